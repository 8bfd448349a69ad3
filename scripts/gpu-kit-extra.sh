#!/usr/bin/env bash
# Run here (not on the device), after ../shared/device/make-kit.sh: packs what that kit leaves
# out but our tokenizer library needs (PCRE2, ICU, utf8proc: headers, .pc files and shared
# libraries from Debian 12's packages, static archives and docs dropped) into
# .devkit/extra.tar.xz, about 10 MB. scripts/gpu-check.sh unpacks it next to the kit.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d .devkit ]] || { echo "run ../shared/device/make-kit.sh first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/root"
(cd "$work/debs" && apt-get download libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 \
  libpcre2-posix3 libicu-dev libicu72 libutf8proc-dev libutf8proc2 >/dev/null)
for f in "$work"/debs/*.deb; do dpkg -x "$f" "$work/root"; done
find "$work/root" -name '*.a' -delete
rm -rf "$work/root/usr/share/doc" "$work/root/usr/share/man" "$work/root/usr/bin" "$work/root/usr/sbin"
tar -C "$work/root" -cJf .devkit/extra.tar.xz .
[[ -f .devkit/use-kit.sh ]] || cp ../shared/device/use-kit.sh .devkit/
echo "extra: $(du -h .devkit/extra.tar.xz | cut -f1) in .devkit/extra.tar.xz"
