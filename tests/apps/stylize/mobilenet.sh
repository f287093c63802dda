#!/usr/bin/env bash
# synapse stylize with the real nsfwjs MobileNetV2, chosen as the default network because data/nsfwjs
# is there (scripts/fetch-data nsfwjs): 32 px, 2 L-BFGS iterations, the loss must fall; and a --style-layers
# name the network lacks is refused, naming it and listing the layers. Skipped (77) without the model.
# Usage: mobilenet.sh SYNAPSE ROOT PICTURES OUT
set -u
cli=$1 root=$2 in=$3 out=$4
[ -f "$root/data/nsfwjs/mobilenet_v2/model.json" ] || { echo "no $root/data/nsfwjs/mobilenet_v2: skipped"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$out"
cd "$root" || exit 1
log=$(env -u SYNAPSE_DATA "$cli" stylize "$in/content.png" "$in/style.png" -o "$out/mobilenet.jpg" --size 32 --iterations 2 2>&1) ||
  { echo "$log"; fail "synapse stylize exited with an error"; }
echo "$log"
grep -q "^network: the model 'model_1'; the default: nsfwjs' MobileNetV2, found at data/nsfwjs/mobilenet_v2/model.json" <<<"$log" ||
  fail "the default network is not the MobileNetV2"
grep -q "^weights: content 1, style 3e+07, tv 3$" <<<"$log" || fail "not the MobileNetV2 loss weights"
grep -q "^style layers: Conv1_relu, block_1_expand_relu, block_3_expand_relu, block_6_expand_relu, block_13_expand_relu$" <<<"$log" ||
  fail "not the MobileNetV2 style layers"
line=$(grep -E "^wrote .*mobilenet.jpg \(32x24\): 2 iterations" <<<"$log") || fail "no summary line for a 32x24 output"
read -r first last < <(sed -E 's/.*loss ([0-9.e+-]+) -> ([0-9.e+-]+).*/\1 \2/' <<<"$line")
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || fail "the loss did not fall ($first -> $last)"
[ -s "$out/mobilenet.jpg" ] || fail "no output image"
bad=$(env -u SYNAPSE_DATA "$cli" stylize "$in/content.png" "$in/style.png" -o "$out/bad.jpg" --size 32 --iterations 1 \
        --style-layers block_1_expand_relu,block_99_relu 2>&1) && fail "an unknown layer was accepted"
echo "$bad"
grep -q "the model 'model_1' has no layer 'block_99_relu'; its layers are: Conv1_pad, Conv1, Conv1_relu, expanded_conv_depthwise, " <<<"$bad" ||
  fail "the error does not name the layer and list the layers"
echo "ok"
