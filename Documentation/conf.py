# SPDX-License-Identifier: GPL-2.0
# Sphinx configuration: tools/host-tests.sh builds these pages with -W,
# so that any warning fails make check.
import os
import subprocess
import sys

project = 'cowbuf'
author = 'The cowbuf developers'
copyright = '2026, The cowbuf developers'
master_doc = 'index'
exclude_patterns = ['ABI']
html_theme = 'alabaster'

# The kernel's kernel-doc extension, from the linux-source tarball
# (tools/vm/ksrc.sh extracts it into the cache): the locking overview and
# other DOC: sections are pulled from the sources, written once there.
_top = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
_ksrc = os.environ.get('COWBUF_KSRC') or subprocess.run(
    [os.path.join(_top, 'tools', 'vm', 'ksrc.sh')], check=True,
    stdout=subprocess.PIPE, text=True).stdout.strip()
sys.path.insert(0, os.path.join(_ksrc, 'Documentation', 'sphinx'))
extensions = ['kerneldoc']
kerneldoc_bin = os.path.join(_ksrc, 'scripts', 'kernel-doc')
kerneldoc_srctree = _top
