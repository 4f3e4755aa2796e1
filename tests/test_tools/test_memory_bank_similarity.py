"""tools/analysis_tools/memory_bank_similarity.py: the cosine similarity of the memory-bank class
means of a checkpoint, named by the dataset's classes (a panoptic stuff bank by its stuff
classes)."""
import json

import pytest
import torch

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
CAMVID = 'configs/semantic/clustseg_compact_1xb8-1k_camvid-240x180.py'
CAMVID_CKPT = ROOT / 'checkpoints/heldout/clustseg_compact_1xb8-1k_camvid-240x180.pth'


@pytest.fixture(scope='module')
def tool(load_script):
    return load_script('tools/analysis_tools/memory_bank_similarity.py')


def test_shipped_camvid_bank(tool, tmp_path, capsys):
    banks = tool.main([CAMVID, str(CAMVID_CKPT), '--out', str(tmp_path / 'sim.json')])
    assert len(banks) == 1
    bank = banks[0]
    assert bank['module'] == 'decode_head.core.initializer'
    assert bank['classes'][:3] == ['Sky', 'Building', 'Pole'] and len(bank['classes']) == 11
    state = torch.load(str(CAMVID_CKPT), map_location='cpu', weights_only=True)
    state = state.get('state_dict', state)
    assert bank['count'] == state['decode_head.core.initializer.count'].tolist()
    cos = torch.tensor(bank['cosine'])
    torch.testing.assert_close(cos, cos.T)
    torch.testing.assert_close(cos.diagonal(), torch.ones(11), rtol=0, atol=1e-5)
    # the bank's class means, as the initializer computes them (all queues are filled here)
    q = state['decode_head.core.initializer.queue']
    means = torch.nn.functional.normalize(q.mean(1), dim=1)
    torch.testing.assert_close(cos, means @ means.T, rtol=1e-4, atol=1e-4)
    nearest = int((cos - 2 * torch.eye(11))[2].argmax())
    row = (f"| Pole | {bank['count'][2]} | {bank['classes'][nearest]} | "
           f'{float(cos[2, nearest]):.2f} |')
    assert json.loads((tmp_path / 'sim.json').read_text()) == banks
    out = capsys.readouterr().out
    assert '| class | stored embeddings | nearest class | cosine |' in out
    assert row in out


def test_panoptic_stuff_bank_is_named_by_its_stuff_classes(tool, tmp_path):
    from clustseg.apis import init_model
    config = 'configs/panoptic/clustseg_compact_embedded.py'
    model = init_model(config)
    torch.save(model.state_dict(), str(tmp_path / 'untrained.pth'))
    banks = tool.main([config, str(tmp_path / 'untrained.pth')])
    from clustseg.apis.inference import detector_dataset_meta
    names = list(detector_dataset_meta(model)['classes'])
    head = model.panoptic_head
    assert banks[0]['module'] == 'panoptic_head.core.initializer.stuff'
    assert len(names) == head.num_classes > head.num_things_classes
    assert banks[0]['classes'] == names[head.num_things_classes:]
