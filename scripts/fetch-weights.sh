#!/usr/bin/env bash
# Fetches the official weights into a model repository (needs the internet; it cannot
# run on machines without it, such as our CI). Verifies SHA-256 where the publisher
# states one, and writes each model's manifest.json.
#
#   scripts/fetch-weights.sh [MODELS_DIR]     (default: ./models)
#
# What it fetches:
#   clip-vit-b-32, clip-vit-b-16  OpenAI CLIP archives (the SHA-256 is part of the URL),
#                                 with the BPE vocabulary from openai/CLIP
#   lpips-vgg                     torchvision VGG16 and LPIPS v0.1's vgg.pth (InvertImage)
#   lpips-alex                    torchvision AlexNet and StarGAN v2's lpips_weights.ckpt
#                                 from cyclomon/OneshotCLIP (one-shot adaptation)
#   ffhq                          rosinality's conversion of NVIDIA's FFHQ 1024 config-f
#                                 generator (Google Drive; needs `gdown`: pip install gdown)
#   arcface                       TreB1eN's IR-SE-50 ArcFace (model_ir_se50.pth, the identity
#                                 loss of StyleCLIP; Google Drive as StyleCLIP links it; needs
#                                 `gdown`). No publisher checksum is known: the server checks
#                                 every tensor's name and shape when it loads
#   ffhq-e4e                      encoder4editing's FFHQ encoder (e4e_ffhq_encode.pt, Google
#                                 Drive as its README links it; needs `gdown`), for ffhq
#   dlib-landmarks                dlib's 68-point shape predictor with its face detector
#                                 (InvertImage align): copied from Debian's libdlib-data
#                                 (/usr/share/dlib, installed with libdlib-dev) when present,
#                                 else dlib.net's bz2; SHA-256 checked either way
#   ffhq-mapper-NAME              StyleCLIP's 14 pretrained latent mappers of ffhq (afro,
#                                 angry, beyonce, bobcut, bowlcut, curly_hair, depp,
#                                 hilary_clinton, mohawk, purple_hair, surprised, taylor_swift,
#                                 trump, zuckerberg; Google Drive as StyleCLIP's utils.py lists
#                                 them; needs `gdown`)
# The Google Drive files have no published checksum; the server checks every tensor's name
# and shape when it loads them (an import through ImportModel also checks the decoder
# against the base generator).
set -euo pipefail
dest=${1:-models}
mkdir -p "$dest"

fetch() {  # url out [sha256]
  local url=$1 out=$2 sum=${3:-}
  if [ -f "$out" ] && { [ -z "$sum" ] || echo "$sum  $out" | sha256sum -c --quiet; }; then
    echo "have $out"; return
  fi
  echo "fetching $url"
  curl -fL --retry 3 -o "$out.part" "$url"
  if [ -n "$sum" ]; then echo "$sum  $out.part" | sha256sum -c --quiet || { echo "checksum mismatch: $url"; exit 1; }; fi
  mv "$out.part" "$out"
}

gdrive() {  # file_id out: a Google Drive file (no published checksum), with gdown when installed
  local id=$1 out=$2
  mkdir -p "$(dirname "$out")"
  [ -f "$out" ] && { echo "have $out"; return; }
  if command -v gdown > /dev/null; then
    gdown --id "$id" -O "$out"
  else
    echo "$(basename "$(dirname "$out")"): install gdown (pip install gdown) or download Google Drive file $id"
    echo "  to $out by hand, then re-run this script"
  fi
}

vocab_sum=924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a
vocab_url=https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz
base=https://openaipublic.azureedge.net/clip/models
for spec in "clip-vit-b-32 40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af ViT-B-32.pt" \
            "clip-vit-b-16 5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f ViT-B-16.pt"; do
  set -- $spec
  mkdir -p "$dest/$1"
  fetch "$base/$2/$3" "$dest/$1/$3" "$2"
  fetch "$vocab_url" "$dest/$1/bpe_simple_vocab_16e6.txt.gz" "$vocab_sum"
  printf '{"kind": "clip", "checkpoint": "%s", "vocab": "bpe_simple_vocab_16e6.txt.gz"}\n' "$3" > "$dest/$1/manifest.json"
done

# LPIPS for InvertImage (rosinality's projector loss): torchvision's VGG16 (its file name
# carries the first 8 hex digits of its SHA-256) and the LPIPS v0.1 linear layers.
mkdir -p "$dest/lpips-vgg"
fetch https://download.pytorch.org/models/vgg16-397923af.pth "$dest/lpips-vgg/vgg16-397923af.pth"
sha256sum "$dest/lpips-vgg/vgg16-397923af.pth" | grep -q '^397923af' || { echo "vgg16: checksum prefix mismatch"; exit 1; }
fetch https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth "$dest/lpips-vgg/vgg.pth"
printf '{"kind": "lpips", "vgg16": "vgg16-397923af.pth", "lin": "vgg.pth"}\n' > "$dest/lpips-vgg/manifest.json"

# StarGAN v2's AlexNet LPIPS for OneshotCLIP: torchvision's AlexNet (its file name carries
# the first 8 hex digits of its SHA-256) and the 1x1 layers OneshotCLIP ships.
mkdir -p "$dest/lpips-alex"
fetch https://download.pytorch.org/models/alexnet-owt-7be5be79.pth "$dest/lpips-alex/alexnet-owt-7be5be79.pth"
sha256sum "$dest/lpips-alex/alexnet-owt-7be5be79.pth" | grep -q '^7be5be79' || { echo "alexnet: checksum prefix mismatch"; exit 1; }
fetch https://raw.githubusercontent.com/cyclomon/OneshotCLIP/267c116239a191bcef77b3e53bf2ed634596529f/metrics/lpips_weights.ckpt "$dest/lpips-alex/lpips_weights.ckpt" \
  8b641b3c88a60383027f5e3d9b14d0e8687a1b09aeeb4950ec5951813954a36a
printf '{"kind": "lpips", "variant": "alex_stargan", "alexnet": "alexnet-owt-7be5be79.pth", "lin": "lpips_weights.ckpt"}\n' \
  > "$dest/lpips-alex/manifest.json"

# dlib's shape predictor: the same bytes in Debian's libdlib-data and dlib.net's archive.
landmarks_sum=fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f
landmarks_out="$dest/dlib-landmarks/shape_predictor_68_face_landmarks.dat"
mkdir -p "$dest/dlib-landmarks"
if [ ! -f "$landmarks_out" ] && [ -f /usr/share/dlib/shape_predictor_68_face_landmarks.dat ]; then
  cp /usr/share/dlib/shape_predictor_68_face_landmarks.dat "$landmarks_out.part" && mv "$landmarks_out.part" "$landmarks_out"
fi
if [ ! -f "$landmarks_out" ]; then
  fetch https://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2 "$landmarks_out.bz2"
  bunzip2 -f "$landmarks_out.bz2"
fi
echo "$landmarks_sum  $landmarks_out" | sha256sum -c --quiet || { echo "dlib-landmarks: checksum mismatch"; exit 1; }
printf '{"kind": "landmarks", "predictor": "shape_predictor_68_face_landmarks.dat"}\n' > "$dest/dlib-landmarks/manifest.json"

gdrive 1EM87UquaoQmk17Q8d5kYIAHqu0dkYqdT "$dest/ffhq/stylegan2-ffhq-config-f.pt"
printf '{"kind": "generator", "checkpoint": "stylegan2-ffhq-config-f.pt", "domain": "photo", "default_truncation": 0.7}\n' \
  > "$dest/ffhq/manifest.json"
gdrive 1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn "$dest/arcface/model_ir_se50.pth"
printf '{"kind": "arcface", "checkpoint": "model_ir_se50.pth"}\n' > "$dest/arcface/manifest.json"
gdrive 1cUv_reLE6k3604or78EranS7XzuVMWeO "$dest/ffhq-e4e/e4e_ffhq_encode.pt"
printf '{"kind": "encoder", "base_model": "ffhq", "encoder_file": "e4e_ffhq_encode.pt"}\n' > "$dest/ffhq-e4e/manifest.json"

# StyleCLIP's pretrained mappers: file name, Google Drive id, the prompt (StyleCLIP's
# mapper notebook's names).
while IFS='|' read -r name id text; do
  gdrive "$id" "$dest/ffhq-mapper-${name//_/-}/$name.pt"
  printf '{"kind": "mapper", "base_model": "ffhq", "mapper_file": "%s.pt", "target_text": "%s"}\n' "$name" "$text" \
    > "$dest/ffhq-mapper-${name//_/-}/manifest.json"
done <<'EOF_MAPPERS'
afro|1i5vAqo4z0I-Yon3FNft_YZOq7ClWayQJ|afro
angry|1g82HEH0jFDrcbCtn3M22gesWKfzWV_ma|angry
beyonce|1KJTc-h02LXs4zqCyo7pzCp0iWeO6T9fz|Beyonce
bobcut|1IvyqjZzKS-vNdq_OhwapAcwrxgLAY8UF|bobcut
bowlcut|1xwdxI2YCewSt05dEHgkpmmzoauPjEnnZ|bowlcut
curly_hair|1xZ7fFB12Ci6rUbUfaHPpo44xUFzpWQ6M|curly hair
depp|1FPiJkvFPG_y-bFanxLLP91wUKuy-l3IV|Jhonny Depp
hilary_clinton|1X7U2zj2lt0KFifIsTfOOzVZXqYyCWVll|Hilary Clinton
mohawk|1oMMPc8iQZ7dhyWavZ7VNWLwzf9aX4C09|mohawk
purple_hair|14H0CGXWxePrrKIYmZnDD2Ccs65EEww75|purple hair
surprised|1F-mPrhO-UeWrV1QYMZck63R43aLtPChI|surprised
taylor_swift|10jHuHsKKJxuf3N0vgQbX_SMEQgFHDrZa|Taylor Swift
trump|14v8D0uzy4tOyfBU3ca9T0AzTt3v-dNyh|trump
zuckerberg|1NjDcMUL8G-pO3i_9N6EPpQNXeMc3Ar1r|Mark Zuckerberg
EOF_MAPPERS
echo "done: start ganserve with --model_repository $dest"
