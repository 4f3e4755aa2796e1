"""User documentation speaks for itself: no references to the project's internal issue
tracker ("issue 9", "the issue's target")."""
import re

ROOT = __import__('pathlib').Path(__file__).resolve().parents[1]


def test_docs_do_not_mention_internal_issues():
    pattern = re.compile(r"\bissues?\s*#?\d+|\bthe issue's\b", re.IGNORECASE)
    found = []
    for path in [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f'{path.relative_to(ROOT)}:{n}: {line.strip()}')
    assert not found, '\n'.join(found)
