"""Docs without Quarto: `python dev/docs.py readme` writes README.md from nbs/index.ipynb.

nbdev's own notebook processing (`proc_nbs`: hidden cells dropped, directives applied, the title
cell turned into front matter) prepares the notebooks in `_proc/`; this file renders from there.
With Quarto installed, `nbdev-docs` remains the full route."""
import json, re, sys
from pathlib import Path
import yaml
from nbdev.config import get_config
from nbdev.serve import proc_nbs

ROOT = Path(__file__).resolve().parent.parent

def processed(glob: str = '') -> Path:
    "Run nbdev's processing over the notebooks (only those matching `glob`); returns the `_proc` folder."
    return proc_nbs(file_glob=glob, n_workers=0)

def front_matter(nb: dict) -> dict:
    "The YAML front matter nbdev puts in the first (raw) cell: title, description, output-file."
    c = nb['cells'][0]
    if c['cell_type'] != 'raw': return {}
    return yaml.safe_load(''.join(c['source']).strip().strip('-')) or {}

def cell_markdown(c: dict) -> str:
    "Markdown for one processed cell: markdown verbatim, code as a fenced block followed by its text outputs."
    src = ''.join(c['source']).rstrip()
    if c['cell_type'] == 'markdown': return '' if src.startswith('<!-- WARNING') else src
    if c['cell_type'] != 'code': return ''
    parts = [f"```python\n{src}\n```"] if src else []
    for o in c.get('outputs', []):
        text = o.get('text') or o.get('data', {}).get('text/plain')
        if text: parts.append("```\n" + ''.join(text).rstrip() + "\n```")
    return '\n\n'.join(parts)

def readme():
    "Write README.md from the processed index notebook."
    cfg = get_config()
    nb = json.loads((processed(cfg.readme_nb) / cfg.readme_nb).read_text())
    fm = front_matter(nb)
    head = [f"# {fm['title']}", f"> {fm['description']}"] if fm.get('description') else [f"# {fm.get('title', '')}"]
    body = [m for c in nb['cells'] if (m := cell_markdown(c))]
    # links between notebooks point into nbs/ from the repository root
    body = [re.sub(r'\]\((\w+\.ipynb)\)', r'](nbs/\1)', m) for m in body]
    note = "<!-- Generated from nbs/index.ipynb by `python dev/docs.py readme`; edit the notebook, not this file. -->"
    (ROOT / 'README.md').write_text('\n\n'.join([note, *head, *body]) + '\n')

if __name__ == '__main__':
    cmd = sys.argv[1] if len(sys.argv) > 1 else 'readme'
    {'readme': readme}[cmd]()
