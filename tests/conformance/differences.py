"""lmprobe tests that fail with fastprobe because fastprobe deliberately fixes an lmprobe fault.

Each entry is a test id (``file::Class::test``) and the reason, which names the difference as the README's
"Differences from lmprobe" section states it. These tests are listed by ``make conformance`` and not counted.
"""

DIFFERENCES: dict[str, str] = {}
