"""tools/train.py with the semantic embedded config (COCO-Stuff sample of tests/data): the
memory banks are saved in the Runner's checkpoints (loaded weights-only through
clustseg.utils.checkpoint), a run resumed from a checkpoint ends with exactly the banks of an
uninterrupted run, and load_from starts from the checkpoint's banks."""
import shutil

import torch
from mmengine.config import Config

from clustseg.apis import init_model
from clustseg.utils import load_from_checked_file
from train_helpers import env_for, run, train_cmd, write_config

BANK = 'decode_head.core.initializer.'
BANK_KEYS = [BANK + k for k in ('queue', 'ptr', 'count', 'sampler.seed', 'sampler.step')]


def test_banks_through_resume_and_load_from(tmp_path):
    env = env_for(tmp_path)
    cfg = write_config(tmp_path, 'semantic', max_iters=4, batch_size=2, crop=96,
                       ckpt_interval=1, max_keep_ckpts=4, deterministic=True, record=True)
    full = tmp_path / 'full'
    run(train_cmd(cfg, full), env)
    ckpts = {i: load_from_checked_file(str(full / f'iter_{i}.pth'), map_location='cpu')
             for i in (1, 2, 4)}
    final = torch.load(full / 'rank0_state.pt', weights_only=True)
    for k in BANK_KEYS:  # the checkpoint holds the banks of the end of training
        assert torch.equal(ckpts[4]['state_dict'][k], final[k]), k
    c1, c2 = (ckpts[i]['state_dict'][BANK + 'count'] for i in (1, 2))
    assert int(c1.sum()) > 0 and bool((c2 >= c1).all()) and int(c2.sum()) > int(c1.sum())

    # --resume from iteration 2: the same banks (and parameters) as the uninterrupted run
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    shutil.copy(full / 'iter_2.pth', resumed / 'iter_2.pth')
    run(train_cmd(cfg, resumed, '--resume', str(resumed / 'iter_2.pth')), env)
    again = torch.load(resumed / 'rank0_state.pt', weights_only=True)
    for k in BANK_KEYS:
        assert torch.equal(again[k], final[k]), k
    for k in final:
        torch.testing.assert_close(again[k].float(), final[k].float(), rtol=1e-5, atol=1e-6,
                                   msg=k)

    # load_from (init_model and the Runner): the banks of iteration 2, then a fresh loop whose
    # first batch is the first batch of the full run, so one iteration adds iteration 1's counts
    model = init_model(Config.fromfile(str(cfg), import_custom_modules=False),
                       str(full / 'iter_2.pth'))
    state = model.state_dict()
    for k in BANK_KEYS:
        assert torch.equal(state[k], ckpts[2]['state_dict'][k]), k
    loaded = tmp_path / 'loaded'
    run(train_cmd(cfg, loaded, '--cfg-options', f"load_from={full / 'iter_2.pth'}",
                  'train_cfg.max_iters=1'), env)
    after = torch.load(loaded / 'rank0_state.pt', weights_only=True)
    assert torch.equal(after[BANK + 'count'], c2 + c1)
