#!/bin/sh
# Runs in the `afp-bundle` stage of every image function's generated Dockerfile
# (containers/images/<name>/.afp/Dockerfile, written by scripts/images.mjs), a Debian stage that has
# Node 22 at /usr/local/bin/node and the Debian packages `tini` and `patchelf` installed.
#
# Writes /opt/afp/bin/node: the same Node 22 binary, with the libraries it links (libc, libstdc++,
# libm, libgcc_s, ... as `ldd` lists them) and the dynamic loader copied into /opt/afp/lib, and the
# binary patched (patchelf) to use that loader and to search /opt/afp/lib first (DT_RPATH, which
# also covers the libraries' own dependencies). It therefore runs as `/opt/afp/bin/node` in any
# Linux image of the same CPU architecture: a Debian/Ubuntu one, another glibc version, or one with
# no libc at all (FROM scratch). Nothing is set in the environment (no LD_LIBRARY_PATH), so the
# processes Node starts (the user's program) use their own image's libraries.
# Also writes /opt/afp/bin/tini (Debian's statically linked tini: PID 1 of the container) and
# /opt/afp/openssl.cnf (empty). The copied loader's /etc/ld.so.preload is patched to /opt/afp/lib/nopre.
set -eu

OUT=/opt/afp
NODE=/usr/local/bin/node

mkdir -p "$OUT/bin" "$OUT/lib"
cp "$NODE" "$OUT/bin/node"
interpreter="$(patchelf --print-interpreter "$NODE")"
cp -L "$interpreter" "$OUT/lib/"
# `ldd` lines: "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)"; the vdso has no path.
ldd "$NODE" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r library; do
  cp -L "$library" "$OUT/lib/"
done
patchelf --set-interpreter "$OUT/lib/$(basename "$interpreter")" --force-rpath --set-rpath "$OUT/lib" "$OUT/bin/node"
cp /usr/bin/tini-static "$OUT/bin/tini"
# The loader would read the image's /etc/ld.so.preload (the user's filesystem) before starting the
# root agent: point that path (18 bytes) at a platform path of the same length that never exists.
loader="$OUT/lib/$(basename "$interpreter")"
count="$(grep -c -a -F /etc/ld.so.preload "$loader" || true)"
if [ "$count" = 0 ]; then echo "bundle-node.sh: /etc/ld.so.preload not found in $loader" >&2; exit 1; fi
LC_ALL=C sed -i 's|/etc/ld\.so\.preload|/opt/afp/lib/nopre|g' "$loader"
if grep -q -a -F /etc/ld.so.preload "$loader" || ! grep -q -a -F /opt/afp/lib/nopre "$loader"; then
  echo "bundle-node.sh: patching the loader's preload path failed" >&2
  exit 1
fi
# Node's OpenSSL configuration: an empty file of the platform's (the entry passes
# --openssl-config=/opt/afp/openssl.cnf), so no openssl.cnf of the image is read.
: >"$OUT/openssl.cnf"
chown -R 0:0 "$OUT"
chmod 0755 "$OUT" "$OUT/bin" "$OUT/lib" "$OUT/bin/node" "$OUT/bin/tini"
chmod 0644 "$OUT"/lib/* "$OUT/openssl.cnf"
chmod 0755 "$loader"

# The bundled binary must run with nothing but its own files (no system library search).
env -i "$OUT/bin/node" --openssl-config="$OUT/openssl.cnf" -e 'if (process.versions.node.split(".")[0] !== "22") process.exit(1); require("node:crypto").createHash("sha256").update("x").digest()'
# A preload file at the patched path is read (so the patch is the path the loader uses); none exists.
test ! -e "$OUT/lib/nopre"
"$OUT/bin/tini" --version >/dev/null
echo "bundled node $("$OUT/bin/node" --version) ($(ls "$OUT/lib" | wc -l) libraries) and $("$OUT/bin/tini" --version)"
