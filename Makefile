# ownwatch — see README.md. Every target installs what it needs on a fresh Debian machine.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:/usr/local/cargo/bin:$(PATH)

# Debian packages the build and the tests need.
APT_PKGS := clang llvm libelf-dev zlib1g-dev pkg-config make gcc libc6-dev util-linux attr jq systemd
DIR ?= /tmp/ownwatch-demo
ARGS ?=
# TARGET=aarch64-unknown-linux-gnu: build for another machine (cross/build.sh), into
# target/$(TARGET)/release/ownwatch; make dist: static ones for both arches, in dist/
TARGET ?=
BIN := target/release/ownwatch

.PHONY: all deps build dist run test test-host check unit vmlinux vmlinux-host clean

all: build

# Installs only what is missing, so it is quick when everything is there.
deps:
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  [ "$$(id -u)" = 0 ] || { echo "run as root (or sudo) to install:$$missing" >&2; exit 2; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 2; }

build: deps
ifeq ($(TARGET),)
	cargo build --release --locked
else
	cross/build.sh $(TARGET)
endif

# Fully static binaries, the thing an operator copies onto a host: for x86_64 and aarch64 (or
# TARGET alone), built into target/static/<target>/release/ownwatch and copied to
# dist/ownwatch-<version>-<arch>-linux, with dist/SHA256SUMS (sha256sum -c checks them).
DIST_TARGETS := x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu
dist: deps
	@set -e; v=$$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1); mkdir -p dist; \
	for t in $(or $(TARGET),$(DIST_TARGETS)); do \
	  STATIC=1 cross/build.sh $$t; \
	  cp target/static/$$t/release/ownwatch dist/ownwatch-$$v-$${t%%-*}-linux; \
	done; \
	cd dist && sha256sum ownwatch-*-linux > SHA256SUMS && cat SHA256SUMS

# The main job: watch DIR (default: a demo directory owned by nobody, so root's writes show).
run: build
	@if [ "$(DIR)" = /tmp/ownwatch-demo ] && [ ! -d $(DIR) ]; then \
	  mkdir -p $(DIR) && chown 65534:65534 $(DIR); \
	  echo "demo: watching $(DIR) (owned by nobody); try: sudo touch $(DIR)/x" >&2; fi
	$(BIN) watch $(ARGS) $(DIR)

# Everything CI checks: formatting, lints, unit tests, the integration tests that load the
# BPF programs for real on this kernel (as root; in CI they never skip), then the same suite
# on the kernel matrix in qemu, every backend: five amd64 kernels, and the op and path-form
# tests on arm64 6.12 and 7.3 (cross-built; make test-kernels-arm64 runs the whole suite there).
# KERNELS=0 skips the matrix outside CI.
test: test-host
	@if [ "$${CI:-}" = true ] || [ "$${KERNELS:-1}" != 0 ]; then $(MAKE) --no-print-directory test-kernels; \
	else echo "test: kernel matrix skipped (KERNELS=0)"; fi

# This kernel only.
test-host: deps
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings
	cargo test --locked -- --test-threads=$${TEST_THREADS:-4}
	@# the tracepoint backend as it runs before 6.13 (no ctime tracepoints), with real tools
	OWNWATCH_NO_CTIME_HOOKS=1 cargo test --locked --test tools
	@# the programs as they run on 7.x (pinned to their CPU, bpf/lib/pin.h): every op, path
	@# form and real tool
	OWNWATCH_PIN_CPU=1 cargo test --locked --test watch --test tools -- --test-threads=$${TEST_THREADS:-4}

unit: deps
	cargo test --locked --bins

# Regenerate the committed vmlinux/<arch>/vmlinux.h of both architectures from one pinned
# Debian kernel package's BTF (vmlinux/generate.sh; VMLINUX_ARCHS=aarch64 for one), recorded
# in vmlinux/SOURCES. vmlinux-host: x86_64's from the running kernel instead.
vmlinux:
	vmlinux/generate.sh

vmlinux-host:
	@command -v bpftool >/dev/null || apt-get install -y -qq bpftool
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/x86_64/vmlinux.h

clean:
	cargo clean

# The integration suite inside qemu (TCG) on Debian's cloud kernels, per backend: amd64 5.10
# to 7.3 and arm64 6.12 and 7.3 (vm/test-kernels.sh has the knobs); kernels, qemu, busybox and
# the arm64 userland come from Debian packages, cached in .cache/vm. See README.
.PHONY: test-kernels test-kernels-arm64 bench-kernels kernel-table
test-kernels: deps
	vm/test-kernels.sh

# The whole suite on arm64 only, every backend, on Debian's arm64 kernels ARM64_KERNELS
# (default 5.10 6.1 6.12 7.2 7.3).
test-kernels-arm64: deps
	VM_ARCHS=arm64 VM_ARM64_FULL=1 VM_ARM64_KERNEL_SET="$(or $(ARM64_KERNELS),5.10 6.1 6.12 7.2 7.3)" vm/test-kernels.sh

# The static aarch64 binary alone in qemu-system-aarch64 on Debian's arm64 cloud kernels 6.1,
# 6.12 and 7.3 (ARM64_KERNELS="6.12" for one), no userland but busybox: probe, and per backend
# a short watch in which root does each op once (vm/arm64-smoke.sh); a minute or two.
ARM64_KERNELS ?=
.PHONY: smoke-arm64
smoke-arm64: deps
	$(MAKE) --no-print-directory dist TARGET=aarch64-unknown-linux-gnu
	vm/arm64-smoke.sh $(ARM64_KERNELS)

# README "Supported kernels": the table rows from the last test-kernels run's summary
kernel-table:
	vm/matrix-table.sh --readme README.md < .cache/vm/results/summary.txt

# issue 6 in the VMs: the micro storms per backend as ratios to no ownwatch (vm/bench-kernels.sh).
bench-kernels: deps
	vm/bench-kernels.sh

# issue 6: the benchmark, as root (bench/run.py; about 10 minutes). Adds what it needs:
# python3, auditd and stress-ng (linux-perf for the agent's profile, if the distribution has it).
# Results: bench/results-DATE.md (and target/bench/results.json). Options: BENCH_ARGS=--help.
BENCH_PKGS := python3 auditd stress-ng
BENCH_ARGS ?=
.PHONY: bench
bench: build
	@[ "$$(id -u)" = 0 ] || { echo "make bench: run as root (it loads BPF programs, runs auditd)" >&2; exit 2; }
	@missing=""; for p in $(BENCH_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null 2>&1 || \
	  echo "linux-perf not available: the agent's profile is left out" >&2
	mkdir -p target/bench
	gcc -O2 -Wall -Wextra -o target/bench/owbench bench/owbench.c
	python3 bench/run.py $(BENCH_ARGS)
