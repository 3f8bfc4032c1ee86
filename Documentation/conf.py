# SPDX-License-Identifier: GPL-2.0
# Sphinx configuration: tools/host-tests.sh builds these pages with -W,
# so that any warning fails make check.
project = 'cowbuf'
author = 'The cowbuf developers'
copyright = '2026, The cowbuf developers'
master_doc = 'index'
exclude_patterns = ['ABI']
html_theme = 'alabaster'
