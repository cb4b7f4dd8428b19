# guest-image.sh holds what the scripts that build trustack's test guests
# share (scripts/build-test-image, scripts/build-lvm-guest): Debian's
# kernel and busybox fetched as .debs without installing them, the kernel
# modules a guest needs with their dependencies, an initramfs packed from
# a directory, and the outputs moved into place all at once. Source it
# from bash with `set -euo pipefail`, after setting `me` to the script's
# name for messages.

# guest_version prints the version of a build: a hash of the script
# named and of this file, so that a change to either builds again.
guest_version() {
  cat "$1" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16
}

# guest_built reports whether OUT has the files named and was built by
# version $version.
guest_built() {
  local out=$1 f
  shift
  for f in "$@"; do
    [[ -f $out/$f ]] || return 1
  done
  [[ $(cat "$out/version" 2>/dev/null) == "$version" ]]
}

# guest_need fails unless each tool named is installed.
guest_need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null ||
      { echo "$me: $tool not found; run scripts/install-deps" >&2; exit 1; }
  done
}

# guest_workdir makes the temporary directory $work, removed on exit.
guest_workdir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/$me.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # Exit through the EXIT trap on signals too. Bash runs these after the
  # current command ends, so no child is left writing into $work.
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# guest_kernel_package names the versioned kernel package that the
# linux-image-amd64 metapackage currently points at.
guest_kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}

# guest_download downloads the kernel's and the named packages' .debs
# into $work/debs.
guest_download() {
  local kpkg apt_opts=(-qq)
  # As root, apt-get download drops to the _apt user, which cannot write
  # into our private temp dir, and falls back to root with a warning; ask
  # for root directly instead.
  [[ $(id -u) -ne 0 ]] || apt_opts+=(-o APT::Sandbox::User=root)
  kpkg=$(guest_kernel_package)
  [[ -n $kpkg ]] || return 1
  mkdir -p "$work/debs"
  (cd "$work/debs" && apt-get "${apt_opts[@]}" download "$kpkg" "$@")
}

# guest_fetch downloads and unpacks into $work/pkg the kernel and the
# named packages (busybox-static among them), without installing them,
# and sets bb (the busybox binary), kdir (the kernel's modules directory)
# and kver (its version), with modules.dep made.
guest_fetch() {
  local sudo="" deb
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  # Refresh the package lists only if the download fails (no lists yet,
  # or lists so old that the mirror no longer has the files they name).
  if ! guest_download "$@" 2>/dev/null; then
    echo "$me: updating apt package lists"
    $sudo apt-get update -qq
    guest_download "$@"
  fi
  mkdir -p "$work/pkg"
  for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/pkg"
  done
  # Newer Debian releases install under /usr (merged /usr); look in both.
  bb=$(compgen -G "$work/pkg/bin/busybox" || compgen -G "$work/pkg/usr/bin/busybox") ||
    { echo "$me: busybox-static has no busybox binary" >&2; exit 1; }
  kdir=$(compgen -G "$work/pkg/lib/modules/*" || compgen -G "$work/pkg/usr/lib/modules/*") ||
    { echo "$me: the kernel package has no modules" >&2; exit 1; }
  kver=${kdir##*/}
  [[ -f $work/pkg/boot/vmlinuz-$kver ]] ||
    { echo "$me: the kernel package has no boot/vmlinuz-$kver" >&2; exit 1; }
  # The package leaves modules.dep to its postinst (depmod); generate it
  # with busybox's depmod, which runs on the unpacked tree and not the
  # host's.
  "$bb" depmod -b "${kdir%/lib/modules/*}" "$kver"
}

# guest_modules sets order to the modules named and their dependencies
# (from modules.dep), each after those it needs.
guest_modules() {
  local line path name m
  declare -gA dep_path=() dep_list=() seen=()
  order=()
  while IFS= read -r line; do
    path=${line%%:*}
    name=${path##*/}; name=${name%%.ko*}; name=${name//-/_}
    dep_path[$name]=$path
    dep_list[$name]=${line#*:}
  done <"$kdir/modules.dep"
  for m in "$@"; do guest_add_module "$m"; done
}

# guest_add_module appends a module's dependencies, then the module, to
# order.
guest_add_module() {
  local name=${1//-/_} dep
  [[ -z ${seen[$name]:-} ]] || return 0
  seen[$name]=1
  [[ -n ${dep_path[$name]:-} ]] ||
    { echo "$me: module $name not in $kver's modules.dep" >&2; exit 1; }
  for dep in ${dep_list[$name]}; do
    dep=${dep##*/}
    guest_add_module "${dep%%.ko*}"
  done
  order+=("$name")
}

# guest_install_modules copies the modules of order into the initramfs
# directory DIR, uncompressed so that busybox insmod loads them whatever
# compression the kernel package uses, with /lib/modules/load, a script
# that loads them in order.
guest_install_modules() {
  local dir=$1 name src dst
  mkdir -p "$dir/lib/modules"
  for name in "${order[@]}"; do
    src=$kdir/${dep_path[$name]}
    dst=$dir/lib/modules/$name.ko
    case $src in
      *.ko.xz) xz -dc "$src" >"$dst" ;;
      *.ko.zst) zstd -qdc "$src" >"$dst" ;;
      *.ko.gz) gzip -dc "$src" >"$dst" ;;
      *) cp "$src" "$dst" ;;
    esac
  done
  printf '%s\n' "${order[@]}" >"$dir/lib/modules/order"
  cat >"$dir/lib/modules/load" <<'EOF'
#!/bin/busybox sh
# Load the modules in /lib/modules/order, each after those it needs.
while read -r m; do
  /bin/busybox insmod "/lib/modules/$m.ko" || { echo "cannot load module $m"; exit 1; }
done </lib/modules/order
EOF
  chmod 755 "$dir/lib/modules/load"
}

# guest_pack packs the directory DIR into the initramfs OUT, compressed
# with gzip at the level given (default 9).
guest_pack() {
  (cd "$1" && find . -print0 | LC_ALL=C sort -z |
    cpio --null --create --format=newc --owner=0:0 --quiet) |
    gzip "-${3:-9}" >"$2"
}

# guest_install moves the files named from $work into OUT, writing the
# version last: first next to the targets (same filesystem, so the final
# renames are atomic), then over them. Until the last rename an
# interrupted run leaves no complete set, and the next run builds again.
guest_install() {
  local out=$1 f
  shift
  mkdir -p "$out"
  for f in "$@"; do
    mv -f "$work/$f" "$out/$f.tmp"
  done
  for f in "$@"; do
    mv -f "$out/$f.tmp" "$out/$f"
  done
  echo "$version" >"$out/version"
}
