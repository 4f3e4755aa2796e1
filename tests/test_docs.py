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


#: capitalised config values, not classes
NOT_CLASSES = {'SyncBN', 'BN', 'GN', 'LN'}
DOCS = ('docs/method.md', 'docs/CONTRACTS.md', 'docs/extending.md')
LINE_REF = re.compile(r'\.py:\d+|\(l\. \d+|\bl\. \d+[,;)]|\blines? \d+(-\d+)?\b')


def _sources():
    """{class name: source text of its file} for the classes of clustseg/, tools/ and the
    OpenMMLab packages the docs cite."""
    import importlib.util
    roots = [ROOT / 'clustseg', ROOT / 'tools']
    for pkg in ('mmdet', 'mmseg', 'mmengine', 'mmcv'):
        spec = importlib.util.find_spec(pkg)
        roots.append(__import__('pathlib').Path(spec.origin).parent)
    classes = {}
    for root in roots:
        for path in root.rglob('*.py'):
            text = path.read_text(errors='ignore')
            for name in re.findall(r'^class (\w+)', text, re.M):
                classes.setdefault(name, []).append(text)
    return classes


def test_docs_cite_no_line_numbers():
    found = []
    for path in [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if LINE_REF.search(line.replace('et al. 20', 'et al 20')):
                found.append(f'{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}')
    assert not found, '\n'.join(found)


def test_cited_symbols_exist():
    """Backticked ``Class``, ``Class.member`` and file paths of the code-reference docs name
    things that exist (method.md's paths are relative to clustseg/models/; ``A/`` is
    configs/panoptic/ablations/)."""
    classes = _sources()
    bad = []
    for doc in DOCS:
        for token in re.findall(r'`([^`\n]+)`', (ROOT / doc).read_text()):
            token = token.strip()
            if re.fullmatch(r'[\w./-]+\.(py|md)', token):
                cands = [ROOT / token, ROOT / 'clustseg/models' / token,
                         ROOT / 'tools/analysis_tools' / token,
                         ROOT / token.replace('A/', 'configs/panoptic/ablations/', 1)]
                if not any(c.exists() for c in cands) and '{' not in token and \
                        '*' not in token and not token.startswith(('my_', 'panoptic_ext',
                                                                   'semantic_ext',
                                                                   'superpixel_ext')):
                    bad.append(f'{doc}: file {token}')
                continue
            m = re.fullmatch(r'([A-Z]\w*[a-z]\w*)(?:\.(\w+))?(?:\(.*\))?', token)
            if not m:
                continue
            cls, member = m.groups()
            if hasattr(__import__('builtins'), cls) or cls in NOT_CLASSES:
                continue
            if cls not in classes:
                bad.append(f'{doc}: class {cls}')
            elif member and not any(re.search(rf'\b(def {member}\b|{member}\s*[:=]|'
                                              rf'self\.{member}\b)', src)
                                    for src in classes[cls]):
                bad.append(f'{doc}: {cls}.{member}')
    assert not bad, '\n'.join(sorted(set(bad)))
