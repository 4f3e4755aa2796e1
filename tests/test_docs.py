"""User documentation speaks for itself: no references to the project's internal issue
tracker ("issue 9", "the issue's target")."""
import functools
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
NOT_CLASSES = {'SyncBN', 'BN', 'GN', 'LN', 'None', 'Pretrained'}
#: the docs whose backticked symbols must resolve
DOCS = ('README.md', 'docs/method.md', 'docs/CONTRACTS.md', 'docs/extending.md',
        'docs/losses.md', 'docs/model_zoo.md', 'docs/recipes.md', 'docs/benchmark.md')
#: names of other code bases the docs cite: kMaX-DeepLab / deeplab2 / Mask2Former / PanFormer
#: source files, mmpretrain's, onnxruntime's and torch's classes, mmengine's log keys, mmcv's
#: pure-PyTorch deformable attention and its argument, CPU flags
UPSTREAM = {'config.py', 'criterion.py', 'max_deeplab_loss.py', 'panformer_head.py',
            'ConvNeXt', 'SessionOptions', 'TorchDispatchMode', 'data_time', 'grad_norm',
            'multi_scale_deformable_attn_pytorch', 'spatial_shapes', 'amx_bf16', 'avx512_bf16'}
#: paths outside the committed tree: data sets, runs (their outputs and the scripts kept with
#: them, not committed), environments and the device machine's scripts
LOCAL_PATHS = ('data/', 'work_dirs/', '.venv/', '.gpu/', '../shared/')
#: where a renamed symbol's old name may stand, for history: ``then named `old` ``
HISTORY = 'then named '
#: line-number references: ``file.py:123``, ``file.py#L12``, ``L123``, ``L12-L20``,
#: ``line 123``, ``lines 10-20``, ``l. 12``, ``ll. 10-20`` (``L1`` / ``L2`` norms and
#: ``SEEDS L4`` (4 levels) are not references: single-digit ``L`` needs a range or a ``#``)
LINE_REF = re.compile(
    r'\.(?:py|md|sh|ya?ml|toml|cfg|txt|json)(?::\d+|#L\d+)|#L\d+|(?<![\w-])L\d{2,}\b|'
    r'(?<![\w-])L\d+\s*-\s*L?\d+\b|\(l\. \d+|\bll?\. \d+[,;)\-]|\blines? \d+(-\d+)?\b',
    re.IGNORECASE)
#: names that issue-era refactors removed; the docs must not describe them as current
REMOVED = re.compile(
    r'\b(_train_cache|_query_classes|_final_centers|init_level|image_valid|'
    r'share_final_matching|kv_dims|inner_dims|color_weight|init_sharpness|init_learned_scale|'
    r'PQStyleLoss|MaskIDCrossEntropyLoss|InstanceDiscriminationLoss|SemanticAuxLoss|'
    r'(?<!pixelwise_)instance_discrimination_loss)\b')
#: function-call notation in the docs that is mathematics, not a code reference
MATH = {'ceil', 'max', 'min', 'softmax', 'exp', 'log', 's_k', 'c_k', 'sqrt', 'mean', 'sum'}
#: where a cited path may be relative to (method.md: clustseg/models/; ``A/``: the ablations)
PATH_ROOTS = ('', 'clustseg/models/', 'tools/analysis_tools/')


def _doc_files():
    return [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]


def test_docs_cite_no_line_numbers():
    found = []
    for path in _doc_files():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if LINE_REF.search(line.replace('et al. 20', 'et al 20')):
                found.append(f'{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}')
    assert not found, '\n'.join(found)


def test_line_number_pattern_catches_references():
    for bad in ('see `clustseg_head.py:123`', 'cluster_decoder.py#L40', 'at L123 of the head',
                'L12-L20', 'line 57', 'lines 10-20', 'Lines 3-4', '(l. 12)', 'll. 10-20'):
        assert LINE_REF.search(bad), bad
    for ok in ('smooth-L1 term', 'L2-normalised', 'SEEDS L4', 'the level L-1', 'T = 3, L = 6'):
        assert not LINE_REF.search(ok), ok


def test_docs_do_not_describe_removed_code():
    found = []
    for path in _doc_files():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = REMOVED.search(line)
            if m:
                found.append(f'{path.relative_to(ROOT)}:{n}: {m.group(0)}')
    assert not found, '\n'.join(found)


@functools.lru_cache(maxsize=1)
def _index():
    return _Index()


class _Index:
    """Classes and functions of clustseg/ and tools/ (parsed), class names of the OpenMMLab
    packages the docs cite (text), and every identifier of clustseg/ tools/ configs/ tests/."""

    def __init__(self):
        import ast
        import importlib.util
        self.classes = {}  # name -> [ast.ClassDef]
        self.functions = {}  # name -> [ast.FunctionDef] (module level and methods)
        for root in ('clustseg', 'tools'):
            for path in (ROOT / root).rglob('*.py'):
                tree = ast.parse(path.read_text(), str(path))
                for node in ast.walk(tree):
                    if isinstance(node, ast.ClassDef):
                        self.classes.setdefault(node.name, []).append(node)
                    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self.functions.setdefault(node.name, []).append(node)
        self.external = set()
        for pkg in ('mmdet', 'mmseg', 'mmengine', 'mmcv'):
            spec = importlib.util.find_spec(pkg)
            for path in __import__('pathlib').Path(spec.origin).parent.rglob('*.py'):
                self.external.update(re.findall(r'^class (\w+)', path.read_text(errors='ignore'),
                                                re.M))
        self.words = set()
        for root in ('clustseg', 'tools', 'configs', 'tests'):
            for path in (ROOT / root).rglob('*.py'):
                if path.name != 'test_docs.py':  # its examples of bad names
                    self.words.update(re.findall(r'[A-Za-z_]\w*', path.read_text()))

    # -- classes
    def _bases(self, node):
        for b in node.bases:
            name = b.attr if hasattr(b, 'attr') else getattr(b, 'id', None)
            for base in self.classes.get(name, []):
                if base is not node:
                    yield base

    def members(self, cls, seen=None):
        """{member name: FunctionDef or None} of ``cls`` and its (indexed) bases: methods,
        class attributes and annotations, ``self.x = ...`` in its methods."""
        import ast
        seen = set() if seen is None else seen
        out = {}
        for node in self.classes.get(cls, []):
            if id(node) in seen:
                continue
            seen.add(id(node))
            for base in self._bases(node):
                for k, v in self.members(base.name, seen).items():
                    out.setdefault(k, v)
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out[item.name] = item
                elif isinstance(item, ast.Assign):
                    for t in item.targets:
                        if isinstance(t, ast.Name):
                            out.setdefault(t.id, None)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    out.setdefault(item.target.id, None)
            for sub in ast.walk(node):
                if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store) and \
                        getattr(sub.value, 'id', None) == 'self':
                    out.setdefault(sub.attr, None)
        return out

    def accepts(self, fn, kwargs, owner=None):
        """Whether ``fn`` (a FunctionDef) takes every keyword in ``kwargs`` (through
        ``**kwargs`` into the ``__init__`` of ``owner``'s bases)."""
        a = fn.args
        names = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
        missing = set(kwargs) - names
        if missing and a.kwarg is not None and owner is not None:
            for node in self.classes.get(owner, []):
                for base in self._bases(node):
                    init = self.members(base.name).get('__init__')
                    if init is None or self.accepts(init, missing, base.name):
                        return True
            return not any(True for node in self.classes.get(owner, [])
                           for _ in self._bases(node))  # external base: cannot tell
        return not missing


def _top_level_kwargs(args: str):
    """Keyword names at the top nesting level of a call's argument text."""
    depth, cur, parts = 0, '', []
    for ch in args:
        if ch in '([{':
            depth += 1
        elif ch in ')]}':
            depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += ch
    parts.append(cur)
    return [m.group(1) for p in parts for m in [re.match(r'\s*(\w+)\s*=(?!=)', p)] if m]


@functools.lru_cache(maxsize=1)
def _external_roots():
    """The installed MMDetection's and MMSegmentation's own files (their ``configs/``)."""
    import importlib.util
    from pathlib import Path
    return tuple(Path(importlib.util.find_spec(pkg).origin).parent / '.mim'
                 for pkg in ('mmdet', 'mmseg'))


@functools.lru_cache(maxsize=1)
def _file_names():
    """Names of the committed files (outside data sets, runs and environments) and the
    file names the tools write (``heldout_gpu.md``), for a path cited by its name alone."""
    import os
    names = set()
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith('.') and
                   not (top == str(ROOT) and d in ('data', 'work_dirs'))]
        names.update(files)
    for path in (ROOT / 'tools').rglob('*.py'):
        names.update(re.findall(r"[\w-]+\.(?:md|json)\b", path.read_text()))
    return names


def _path_exists(token: str) -> bool:
    token = token.replace('A/', 'configs/panoptic/ablations/', 1) if token.startswith('A/') \
        else token
    if token.startswith(LOCAL_PATHS):
        return True
    if '/' not in token:
        return token in _file_names() or token in UPSTREAM
    return any((ROOT / r / token).exists() for r in PATH_ROOTS) or \
        any((root / token).exists() for root in _external_roots())


def _check_token(token: str, idx: _Index):
    """None when the backticked ``token`` resolves (or is not a code reference), else why
    not."""
    token = token.strip()
    if token in UPSTREAM:
        return None
    first = token.split()[0] if token else ''
    # file paths (``tools/train.py --resume``, ``tests/x.py::test_y``), folders
    m = re.fullmatch(r'([\w./-]+\.(?:py|md|sh|json|ya?ml|toml|txt|npz))(?:::(\w+))?', first)
    if m and '/' in first or m and re.fullmatch(r'\w+\.(py|md)', first):
        path, test = m.groups()
        if '{' in token or '*' in token:
            return None
        if not _path_exists(path):
            return f'file {path}'
        if test and not re.search(rf'^def {test}\b', (ROOT / path).read_text(), re.M):
            return f'test {path}::{test}'
        return None
    if re.fullmatch(r'[\w./-]+/', token):
        return None if _path_exists(token) else f'folder {token}'
    # a run's outputs by name (checkpoints, JSON results), not code
    if re.fullmatch(r'[\w.-]+\.(?:pth|json|log|png|onnx|csv)', token):
        return None
    # the docs' mathematical symbols (``L_th``, ``M_b``) and ``T_max`` are not classes
    if re.fullmatch(r'[A-Z]_\w+', token):
        return None
    # Class, Class.member, Class(kw=...), Class.member(kw=...)
    m = re.fullmatch(r'([A-Z]\w*[a-z]\w*)(?:\.(\w+))?(?:\((.*)\))?(?:\s*->.*)?', token)
    if m:
        cls, member, args = m.groups()
        if cls in NOT_CLASSES or hasattr(__import__('builtins'), cls):
            return None
        if cls not in idx.classes:
            if cls in idx.external or cls in UPSTREAM:
                return None
            return f'class {cls}'
        members = idx.members(cls)
        if member and member not in members:
            return f'{cls}.{member}'
        fn = members.get(member or '__init__')
        kwargs = _top_level_kwargs(args) if args and '...' not in args else []
        if kwargs and fn is not None and not idx.accepts(fn, kwargs, cls if not member else None):
            return f'{token}: keyword not taken'
        return None
    # clustseg.module.name
    m = re.fullmatch(r'clustseg(\.\w+)+', token)
    if m:
        parts = token.split('.')
        for i in range(len(parts), 0, -1):
            base = ROOT.joinpath(*parts[:i])
            for f in (base.with_suffix('.py'), base / '__init__.py'):
                if f.exists():
                    rest = parts[i:]
                    if not rest or re.search(rf'\b{rest[0]}\b', f.read_text()):
                        return None
                    return f'{token}: {rest[0]} not in {f.relative_to(ROOT)}'
        return f'module {token}'
    # function(...) / method(...)
    m = re.fullmatch(r'(_?[a-z]\w*)\((.*)\)(?:\s*->.*)?', token)
    if m:
        name, args = m.groups()
        if name in MATH or not re.fullmatch(r'[\w\s.,=\'"()\[\]-]*|\.\.\.', args):
            return None
        fns = idx.functions.get(name)
        if not fns:
            return None if name in idx.words else f'function {name}'
        kwargs = _top_level_kwargs(args)
        if kwargs and not any(idx.accepts(f, kwargs) for f in fns):
            return f'{token}: keyword not taken'
        return None
    # snake_case names and dotted config keys (``train_cfg.recompute_losses``)
    if re.fullmatch(r'_?[a-z]\w*_\w*(\.\w+)*|[a-z]\w*(\.\w+)+', token) and \
            not token.startswith('torch.'):
        unknown = [p for p in token.split('.') if p not in idx.words and not p.isdigit()]
        return f'name {token}' if unknown else None
    return None


def test_cited_symbols_exist():
    """Backticked classes, ``Class.member``, ``Class(keyword=...)``, ``function(...)``,
    ``clustseg.module.name``, snake_case names and file paths of the docs name things that
    exist (method.md's paths are relative to clustseg/models/; ``A/`` is
    configs/panoptic/ablations/; ``configs/`` paths may be MMDetection's or MMSegmentation's;
    a file cited by its name alone is a committed file or one a tool writes); a member must
    be defined in the class or its bases, a cited keyword must be a parameter. Exceptions:
    :data:`UPSTREAM` names, :data:`LOCAL_PATHS`, and an old name after :data:`HISTORY`."""
    idx = _index()
    bad = []
    for doc in DOCS:
        text = (ROOT / doc).read_text()
        for history, token in re.findall(rf'({HISTORY})?`([^`\n]+)`', text):
            if history:
                continue
            why = _check_token(token, idx)
            if why and not token.startswith(('my_', 'panoptic_ext', 'semantic_ext',
                                             'superpixel_ext')):
                bad.append(f'{doc}: {why}')
    assert not bad, '\n'.join(sorted(set(bad)))


def test_symbol_check_can_fail():
    idx = _index()
    for bad in ('NoSuchCore', 'ClusteringCore.no_such_method', 'ClusterDecoder(dropout=0.1)',
                'clustseg/models/core/no_such_file.py', 'local_em_v2(x)',
                'clustseg.apis.no_such_api', 'tests/test_docs.py::test_nothing',
                'ClusteringCore.forward(x, no_such_kw=None)', 'not_a_name_anywhere_xyz',
                'ClustSegHead.loss_by_feat_v2', 'ClustSegPanopticHead._draw_points',
                '_group_mask_loss', 'configs/mask2former/no_such_config.py', 'no_such_doc.md',
                'test_evaluator.0.no_such_key'):
        assert _check_token(bad, idx), bad
    for ok in ('ClusteringCore', 'ClustSegInstanceHead.forward', 'ClusterDecoder.forward',
               'ClusterDecoder(local_levels=(2,))', 'clustseg/models/core/clustering_core.py',
               'local_em(x)', 'clustseg.apis.inference_assignments', 'SoftmaxOverPixels',
               'EStepVariant.mass_normalised', 'ImageAdaptiveInitializer(pos_dims=64)',
               'MaskFormerFusionHead', 'core/mask_predictor.py', 'CONTRACTS.md',
               'configs/mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
               'work_dirs/s33/breakdown.py', 'data/coco/', 'heldout_gpu.md', 'L_th',
               'test_evaluator.0.outfile_prefix', 'best_superpixel_ASA_iter_2000.pth',
               'max_deeplab_loss.py'):
        assert _check_token(ok, idx) is None, ok
