"""The operator's guide's commands that run on Linux, read from the rst.

A ``.. code-block:: console`` with the option ``:class: linux-runnable``
holds commands, one per ``$ `` line, that must keep working as written.
tests/unit/test_guide_commands.py runs the offline ones (the config
generator, the preflight check against the simulated host) and checks that
tools/cloud/main_job.py runs the cloud ones (``openstack``,
``nova-manage``), which need the all-in-one cloud.  No imports beyond the
standard library: the cloud's main job loads this file too.
"""

import glob
import os
import re
import shlex

DOC_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'doc', 'source')
MARK = 'linux-runnable'
OFFLINE_PROGRAMS = ('oslo-config-generator', 'compute-hyperv-ovs-status')
CLOUD_PROGRAMS = ('openstack', 'nova-manage')

_BLOCK = re.compile(r'^(\s*)\.\. code-block:: console\s*$')
_OPTION = re.compile(r'^\s+:(\w+):\s*(.*)$')


class GuideCommand(object):
    """One ``$`` line: where it is and its arguments (``shlex`` split)."""

    def __init__(self, path, lineno, line):
        self.path = path
        self.lineno = lineno
        self.line = line
        self.argv = shlex.split(line)

    @property
    def program(self):
        return self.argv[0]

    def __repr__(self):
        return '%s:%d: $ %s' % (os.path.basename(self.path), self.lineno,
                                self.line)


def commands(doc_dir=DOC_DIR):
    """Every command of every marked console block, in file order.

    :returns: list of :class:`GuideCommand`.
    """
    found = []
    for path in sorted(glob.glob(os.path.join(doc_dir, '*.rst'))):
        with open(path) as f:
            lines = f.read().splitlines()
        i = 0
        while i < len(lines):
            if not _BLOCK.match(lines[i]):
                i += 1
                continue
            i += 1
            marked = False
            while i < len(lines) and _OPTION.match(lines[i]):
                name, value = _OPTION.match(lines[i]).groups()
                marked = marked or (name == 'class' and
                                    MARK in value.split())
                i += 1
            # The block's body: blank lines and indented lines.
            while i < len(lines) and (not lines[i].strip() or
                                      lines[i].startswith(' ')):
                text = lines[i].strip()
                if marked and text.startswith('$ '):
                    found.append(GuideCommand(path, i + 1, text[2:]))
                i += 1
    return found


def cloud_commands(doc_dir=DOC_DIR):
    """The marked commands that need a running cloud."""
    return [c for c in commands(doc_dir) if c.program in CLOUD_PROGRAMS]
