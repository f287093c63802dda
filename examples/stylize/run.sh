#!/bin/sh
# Regenerates the README's style-transfer picture (docs/images/stylize-china.jpg): scikit-learn's sample
# photo (Debian's python3-sklearn) painted in the manner of a procedural "night sky" (make_painting.py,
# generated here, so no licence question). Any feature network can be given:
#
#   examples/stylize/run.sh                         # the default: a VGG-shaped network with random weights
#   examples/stylize/run.sh --network model.onnx --content-layers ... --style-layers ...
#
# Extra arguments go to `synapse stylize` (e.g. --size 512 --iterations 300). SYNAPSE: the synapse binary.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
synapse=${SYNAPSE:-$root/build/src/synapse}
content=/usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg
[ -f "$content" ] || { echo "missing $content: apt-get install python3-sklearn" >&2; exit 1; }
out=${OUT:-$root/build/stylize}
mkdir -p "$out"
[ -f "$out/painting.png" ] || python3 "$here/make_painting.py" "$out/painting.png" 256
"$synapse" stylize "$content" "$out/painting.png" -o "$out/china-stylized.jpg" --size 384 --iterations 100 --style-weight 3e6 --tv-weight 0.1 --content-weight 0.5 --save-every 50 "$@"
mkdir -p "$root/docs/images"
cp "$out/china-stylized.jpg" "$root/docs/images/stylize-china.jpg"
cp "$out/painting.png" "$root/docs/images/stylize-painting.png"
echo "docs/images/stylize-china.jpg updated"
