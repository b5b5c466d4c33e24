"""Per-test results of one tempest run, and its one-line summary.

Run with tempest's virtualenv (python-subunit, testtools)::

  results.py STREAM LISTED CSV

STREAM is the run's subunit v2 stream, LISTED the ids the selection listed
(``tempest run --list-tests`` with the same lists).  Writes CSV with one row
per test: ``test_id,status,seconds,skip_reason`` (status: passed, failed,
skipped; a test of the selection with no result at all is ``failed`` with
reason "no result").  Prints ``N passed, N failed, N skipped``.

A class-level skip or a setUpClass failure reaches subunit as a single
record named ``setUpClass (module.Class)``; it is counted here once per
listed test of that class, so the figures are per test.
"""

import csv
import re
import sys

import subunit
import testtools

_CLASS_RECORD = re.compile(r'^(setUpClass|tearDownClass) \((.+)\)$')
_STATUS = {'success': 'passed', 'skip': 'skipped', 'fail': 'failed',
           'xfail': 'passed', 'uxsuccess': 'failed'}


def _base_id(test_id):
    # Listed ids carry attributes: "mod.Class.test[id-...,smoke]".
    return test_id.split('[', 1)[0]


def read_stream(path):
    records = []

    def on_test(test):
        if test['status'] in ('exists', 'inprogress'):
            return
        details = test['details']
        reason = details['reason'].as_text() if 'reason' in details else ''
        start, stop = test['timestamps']
        seconds = (stop - start).total_seconds() if start and stop else 0.0
        records.append((test['id'], test['status'], seconds, reason))

    with open(path, 'rb') as stream:
        case = subunit.ByteStreamToStreamResult(stream,
                                                non_subunit_name='stdout')
        result = testtools.StreamToDict(on_test)
        result.startTestRun()
        case.run(result)
        result.stopTestRun()
    return records


def per_test(records, listed):
    by_class = {}
    for test_id in listed:
        by_class.setdefault(test_id.rsplit('.', 1)[0], []).append(test_id)
    results = {}
    class_records = []
    for test_id, status, seconds, reason in records:
        match = _CLASS_RECORD.match(test_id)
        if match:
            class_records.append((match.group(2), status, reason))
            continue
        results[_base_id(test_id)] = (
            _STATUS.get(status, 'failed'), seconds, reason)
    for cls, status, reason in class_records:
        if status == 'success':
            continue
        for test_id in by_class.get(cls, []):
            if status == 'skip' or test_id not in results:
                results[test_id] = (_STATUS.get(status, 'failed'), 0.0,
                                    reason or '%s of the class' % status)
    for test_id in listed:
        results.setdefault(test_id, ('failed', 0.0, 'no result'))
    return results


def main(argv):
    if len(argv) != 4:
        print(__doc__)
        return 2
    stream, listed_file, csv_path = argv[1:]
    with open(listed_file) as f:
        listed = [_base_id(line.strip()) for line in f if line.strip()]
    results = per_test(read_stream(stream), listed)
    with open(csv_path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['test_id', 'status', 'seconds', 'skip_reason'])
        for test_id in sorted(results):
            status, seconds, reason = results[test_id]
            writer.writerow([test_id, status, '%.1f' % seconds,
                             reason if status == 'skipped' else ''])
    counts = {'passed': 0, 'failed': 0, 'skipped': 0}
    for status, _seconds, _reason in results.values():
        counts[status] += 1
    print('%(passed)d passed, %(failed)d failed, %(skipped)d skipped' % counts)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
