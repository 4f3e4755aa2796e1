"""Remote checkpoints (http(s)://, torchvision://, ...) go through the same weights-only,
allow-listed loader as local files: a malicious file served on 127.0.0.1 is refused and its
code never runs; a good one loads; the offline switch maps names to a local folder."""
import functools
import http.server
import os
import threading

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from clustseg.utils import InvalidCheckpointError
from clustseg.utils.pretrained import OFFLINE_ENV


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this would create the marker file
        return (os.makedirs, (self.marker, ))


@pytest.fixture()
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; stopped after the test."""
    www = tmp_path / 'www'
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()
    httpd.server_close()


def test_malicious_remote_checkpoint_runs_no_code(server, tmp_path, monkeypatch):
    www, url = server
    marker = tmp_path / 'pwned'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': _Evil(str(marker))},
               www / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, www / 'good.pth')
    monkeypatch.setenv(OFFLINE_ENV, '')  # online: the download path
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    with pytest.raises(InvalidCheckpointError, match='outside the allow-list'):
        CheckpointLoader.load_checkpoint(f'{url}/evil.pth', map_location='cpu')
    assert not marker.exists()
    good = CheckpointLoader.load_checkpoint(f'{url}/good.pth', map_location='cpu')
    assert torch.equal(good['state_dict']['w'], torch.ones(2))
    assert (tmp_path / 'hub' / 'hub' / 'checkpoints' / 'good.pth').is_file()  # cached once


def test_offline_switch_for_remote_names(tmp_path, monkeypatch):
    torch.save({'state_dict': {'w': torch.full((1, ), 3.0)}}, tmp_path / 'model.pth')
    monkeypatch.setenv(OFFLINE_ENV, str(tmp_path))
    ckpt = CheckpointLoader.load_checkpoint('https://example.org/x/model.pth', map_location='cpu')
    assert float(ckpt['state_dict']['w']) == 3.0
    monkeypatch.setenv(OFFLINE_ENV, 'none')
    with pytest.raises(FileNotFoundError, match='not downloaded'):
        CheckpointLoader.load_checkpoint('https://example.org/x/model.pth')
    monkeypatch.setenv(OFFLINE_ENV, str(tmp_path / 'missing'))
    with pytest.raises(FileNotFoundError, match='neither "none" nor an existing directory'):
        CheckpointLoader.load_checkpoint('https://example.org/x/model.pth')


def test_failed_download_names_the_url_and_the_offline_switch(tmp_path, monkeypatch):
    """Online mode on a machine that cannot reach the server (here a closed port on
    127.0.0.1): the error names the URL and the offline switch, not just the socket error."""
    import socket
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(OFFLINE_ENV, '')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    url = f'http://127.0.0.1:{port}/x/model.pth'
    with pytest.raises(OSError, match=rf'could not download {url} .*{OFFLINE_ENV}=none.*'
                       rf'read model.pth from DIR'):
        CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert not list((tmp_path / 'hub').rglob('*.pth'))


def test_mmcls_and_deprecated_names_follow_the_offline_switch(tmp_path, monkeypatch):
    """``mmcls://`` names and deprecated ``open-mmlab://`` names are remote names like the
    others: read from the switch's folder (an mmcls classifier's backbone keys unprefixed, as
    mmengine's loader gives them), never downloaded under ``none``."""
    from mmengine.runner.checkpoint import get_deprecated_model_names
    from clustseg.utils.pretrained import local_file_name
    name = local_file_name('mmcls://resnet50')
    assert name.startswith('resnet50_') and name.endswith('.pth')
    torch.save({'state_dict': {'backbone.w': torch.ones(1), 'head.fc.w': torch.zeros(1)}},
               tmp_path / name)
    monkeypatch.setenv(OFFLINE_ENV, str(tmp_path))
    ckpt = CheckpointLoader.load_checkpoint('mmcls://resnet50', map_location='cpu')
    assert list(ckpt['state_dict']) == ['w']
    monkeypatch.setenv(OFFLINE_ENV, 'none')
    with pytest.raises(FileNotFoundError, match='not downloaded'):
        CheckpointLoader.load_checkpoint('mmcls://resnet50')
    old, new = next(iter(get_deprecated_model_names().items()))
    assert local_file_name(f'open-mmlab://{old}') == local_file_name(f'open-mmlab://{new}')
