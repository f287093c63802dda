#!/bin/sh
# Regenerates the README's style-transfer picture (docs/images/stylize-china.jpg): scikit-learn's sample
# photo china.jpg (Debian's python3-sklearn) painted in the manner of Van Gogh's "The Starry Night" (1889,
# public domain), the scan OpenCV ships as samples/data/starry_night.jpg, taken from Debian's opencv-doc
# package (downloaded here with `apt-get download`, ~96 MB once, kept in $OUT; nothing is committed but
# small copies in docs/images). Without apt (or offline) it falls back to the procedural night sky of
# make_painting.py. STYLE=FILE uses another painting.
#
#   examples/stylize/run.sh                   # the default network: nsfwjs' MobileNetV2 when data/nsfwjs is
#                                             # there (scripts/fetch-data nsfwjs), else the random VGG
#   examples/stylize/run.sh --network model.onnx --content-layers ... --style-layers ...
#
# Extra arguments go to `synapse stylize` (any flag but --size and --iterations, which are SIZE and
# ITERATIONS here: SIZE=512 ITERATIONS=300 examples/stylize/run.sh). SYNAPSE: the synapse binary.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
synapse=${SYNAPSE:-$root/build/src/synapse}
content=/usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg
[ -f "$content" ] || { echo "missing $content: apt-get install python3-sklearn" >&2; exit 1; }
out=${OUT:-$root/build/stylize}
mkdir -p "$out"
style=${STYLE:-}
if [ -z "$style" ]; then
  style=$out/starry_night.jpg
  if [ ! -f "$style" ]; then
    (cd "$out" && apt-get download opencv-doc >/dev/null 2>&1) || true
    deb=$(ls "$out"/opencv-doc_*.deb 2>/dev/null | head -n 1)
    if [ -n "$deb" ] && dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/doc/opencv-doc/examples/data/starry_night.jpg >"$style.part"; then
      mv "$style.part" "$style"
    else
      rm -f "$style.part"
      echo "no opencv-doc package (apt-get download opencv-doc failed): using the procedural painting" >&2
      style=$out/painting.png
      [ -f "$style" ] || python3 "$here/make_painting.py" "$style" 256
    fi
  fi
fi
# From the repository's root, so that the default network is found in data/.
cd "$root"
"$synapse" stylize "$content" "$style" -o "$out/china-stylized.jpg" --size "${SIZE:-384}" --iterations "${ITERATIONS:-100}" \
  --save-every 50 "$@"
mkdir -p "$root/docs/images"
cp "$out/china-stylized.jpg" "$root/docs/images/stylize-china.jpg"
# A small copy of the painting for the README: synapse's own resize (no style, no smoothing: the content
# image itself is the optimum, so L-BFGS stops at once and writes it at --size).
"$synapse" stylize "$style" "$style" -o "$root/docs/images/stylize-style.jpg" --size 256 --iterations 1 --network random \
  --style-weight 0 --tv-weight 0 >/dev/null
echo "docs/images/stylize-china.jpg updated"
