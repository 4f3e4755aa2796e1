"""tools/analysis_tools/superpixel_compare.py: equal-count interpolation of curve CSVs."""

import pytest

HEADER = 'method,K,num_superpixels,ASA,UE,BR,BP,CO,sec_per_image,num_images\n'


@pytest.fixture(scope='module')
def tool(load_script):
    return load_script('tools/analysis_tools/superpixel_compare.py')


def _write(path, rows):
    path.write_text(HEADER + ''.join(','.join(map(str, r)) + '\n' for r in rows))
    return str(path)


def test_interpolates_at_counts_and_refuses_extrapolation(tool, tmp_path):
    # rows out of count order on purpose; a SLIC row in the same file is not the default method
    csv = _write(tmp_path / 'a.csv', [
        ('ClustSeg', 600, 600, 0.96, 0.1, 0.70, 0.1, 0.40, 1, 10),
        ('ClustSeg', 200, 200, 0.92, 0.2, 0.50, 0.1, 0.30, 1, 10),
        ('SLIC', 200, 150, 0.10, 0.9, 0.10, 0.1, 0.10, 1, 10),
    ])
    method, curve = tool.read_curve(csv)
    assert method == 'ClustSeg'
    assert list(curve['count']) == [200, 600]
    assert tool.at_counts(curve, [400, 200, 600], 'ASA') == pytest.approx([0.94, 0.92, 0.96])
    assert tool.at_counts(curve, [100, 700], 'BR') == [None, None]
    method, slic = tool.read_curve(csv, 'SLIC')
    assert method == 'SLIC' and list(slic['count']) == [150]


def test_main_prints_table(tool, tmp_path, capsys):
    a = _write(tmp_path / 'a.csv', [('ClustSeg', 200, 210, 0.9, 0.2, 0.5, 0.1, 0.3, 1, 10),
                                    ('ClustSeg', 600, 590, 0.95, 0.1, 0.7, 0.1, 0.4, 1, 10)])
    b = _write(tmp_path / 'b.csv', [('SLIC', 400, 300, 0.8, 0.2, 0.4, 0.1, 0.2, 1, 10),
                                    ('SLIC', 800, 700, 0.9, 0.1, 0.6, 0.1, 0.3, 1, 10)])
    assert tool.main([f'ours:{a}', f'slic:{b}:SLIC', '--measures', 'ASA', 'CO']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == '| count | ASA ours | ASA slic | CO ours | CO slic |'
    assert lines[2] == '| 210 | 0.9000 | - | 0.3000 | - |'  # 210 is below SLIC's range
    assert lines[3] == '| 590 | 0.9500 | 0.8725 | 0.4000 | 0.2725 |'


@pytest.mark.parametrize('content,msg', [
    ('', 'no rows'),
    ('method,K\nClustSeg,200\n', 'not a curve CSV'),
    (HEADER + 'SLIC,200,150,0.1,0.9,0.1,0.1,0.1,1,10\n', 'only baselines'),
    (HEADER + 'ClustSeg,200,abc,0.1,0.9,0.1,0.1,0.1,1,10\n', 'bad number'),
])
def test_bad_csv_names_file(tool, tmp_path, content, msg):
    path = tmp_path / 'bad.csv'
    path.write_text(content)
    with pytest.raises(SystemExit, match=msg) as e:
        tool.read_curve(str(path))
    assert 'bad.csv' in str(e.value)


def test_bad_spec_and_missing_file(tool, tmp_path):
    with pytest.raises(SystemExit, match='bad method spec'):
        tool.main(['nocolon'])
    with pytest.raises(SystemExit, match='cannot read'):
        tool.main([f'x:{tmp_path}/missing.csv'])
    with pytest.raises(SystemExit, match='no rows of method'):
        tool.read_curve(_write(tmp_path / 'c.csv', [('SLIC', 1, 1, 1, 1, 1, 1, 1, 1, 1)]), 'Grid')
