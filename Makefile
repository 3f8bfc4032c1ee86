# SPDX-License-Identifier: GPL-2.0
#
# cowbuf: `make` builds module/cowbuf.ko against KDIR (default: the newest
# installed Debian linux-headers-*-amd64); `make check` is the test command.

KDIR ?= $(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1)

.PHONY: all module clean deps lint check demo bench lane-stock lane-debug

all: module

module:
	@test -n "$(KDIR)" || { echo "no kernel headers: run 'make deps' or set KDIR"; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

clean:
	@test -z "$(KDIR)" || $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf build

# Install the Debian packages the build and the VM lanes need.
deps:
	tools/deps.sh

# sparse, checkpatch and kernel-doc: no VM, under a minute.
lint: deps
	tools/lint.sh

# Everything: deps, build, lint, the stock and the debug VM lanes.
check:
	tools/check.sh

# One lane's kselftests, for iterating (V=1 streams the guest console).
lane-stock lane-debug: deps
	tools/vm/run.sh $(@:lane-%=%) check

demo: deps
	tools/vm/run.sh stock demo

# The benchmarks, in one stock-lane VM run: build/bench/report.md and plots.
bench: deps
	tools/vm/run.sh stock bench
	mkdir -p build/bench
	cp build/stock/results.log build/bench/results.log
	tools/bench-report.sh build/bench/results.log build/bench stock
