# Sourced by vm/fetch-kernels.sh, cross/build.sh and vmlinux/generate.sh: Debian packages
# through a private apt configuration, so the host's apt sources and state are never touched.
# private_apt DIR ARCH: makes DIR's folders and sets APT, the options for apt-get and
# apt-cache that use DIR/sources.list (the caller writes it), DIR/lists and DIR/archives, for
# the Debian architecture ARCH (amd64, arm64) only.
private_apt() {
  local a=$1 arch=$2
  mkdir -p "$a/lists/partial" "$a/archives/partial" "$a/etc/apt.conf.d" "$a/etc/preferences.d"
  APT=(-o "Dir::Etc::SourceList=$a/sources.list" -o "Dir::Etc::SourceParts=-"
       -o "Dir::Etc::Parts=$a/etc/apt.conf.d" -o "Dir::Etc::PreferencesParts=$a/etc/preferences.d"
       -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a" -o "Dir::Cache::Archives=$a/archives"
       -o "Dir::State::status=/var/lib/dpkg/status" -o "APT::Get::List-Cleanup=0"
       -o "Debug::NoLocking=1" -o "Acquire::Languages=none" -o "APT::Sandbox::User=root"
       -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch")
}
