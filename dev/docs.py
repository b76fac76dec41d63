"""Docs without Quarto, from the same notebooks.

    python dev/docs.py readme              # README.md from nbs/index.ipynb
    python dev/docs.py site [--out _site]  # a static site: one page per notebook, in sidebar order

nbdev's own notebook processing (`proc_nbs`: hidden cells dropped, directives applied, `show_doc`
run, the title cell turned into front matter) prepares the notebooks in `_proc/`; this file turns
each processed cell into pandoc markdown and lets Debian's `pandoc` render the HTML (syntax
highlighting as inline CSS, math as MathML: no JavaScript, nothing fetched from the network).
The page order is `website.sidebar.contents` in `nbs/_quarto.yml`. With Quarto installed,
`nbdev-docs` remains the full route."""
import base64, itertools, json, re, shutil, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor
from html import escape
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

# --- one cell -> markdown ------------------------------------------------------------------

def fence(text: str, cls: str = '') -> str:
    "A fenced block longer than any run of backticks inside `text`."
    ticks = '`' * max(3, 1 + max((len(m) for m in re.findall('`+', text)), default=0))
    return f"{ticks}{cls}\n{text}\n{ticks}"

def strip_ansi(s: str) -> str: return re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', s)

def carriage_returns(s: str) -> str:
    "Each line as a terminal leaves it: only what follows its last `\\r` (a progress bar's final state, not all of them)."
    def last(line): return next((seg for seg in reversed(line.split('\r')) if seg), '')   # 'bar\r' still shows 'bar'
    return '\n'.join(last(l) for l in s.replace('\r\n', '\n').split('\n'))

def directives(src: str) -> tuple[dict, str]:
    "Quarto's `#| key: value` lines that nbdev leaves for the renderer (echo, output), and the code without them."
    opts, lines = {}, []
    for l in src.splitlines():
        m = re.match(r'#\|\s*([\w-]+)\s*:\s*(.*)', l)
        if m: opts[m[1]] = yaml.safe_load(m[2])
        else: lines.append(l)
    return opts, '\n'.join(lines).strip('\n')

def output_markdown(o: dict, asis: bool, save) -> str:
    "One output: text as a block, markdown and HTML passed through, images saved by `save(bytes, ext)`."
    if o['output_type'] == 'stream':
        return f"::: {{.cell-output .cell-output-{o['name']}}}\n{fence(carriage_returns(strip_ansi(''.join(o['text']))).rstrip())}\n:::"
    if o['output_type'] == 'error':
        return f"::: {{.cell-output .cell-output-error}}\n{fence(strip_ansi(chr(10).join(o['traceback'])))}\n:::"
    d = {k: ''.join(v) if isinstance(v, list) else v for k, v in o.get('data', {}).items()}
    # a tqdm bar shown as a widget saves only its first state (`0%| 0/35`), never its last: nothing worth a static page
    if 'application/vnd.jupyter.widget-view+json' in d and re.search(r'\d+%\|.*\| *\S+/\S+ \[', d.get('text/plain', '')): return ''
    if 'text/markdown' in d and asis: return d['text/markdown']
    if save:
        for mime in ('image/png', 'image/jpeg', 'image/gif'):
            if mime in d:
                return f"::: {{.cell-output .cell-output-display}}\n![]({save(base64.b64decode(d[mime]), mime.split('/')[1])})\n:::"
    for mime in ('image/svg+xml', 'text/html'):
        if mime in d: return f"::: {{.cell-output .cell-output-display}}\n{fence(d[mime], '{=html}')}\n:::"
    if 'text/markdown' in d: return d['text/markdown']
    if 'text/plain' in d: return f"::: {{.cell-output .cell-output-display}}\n{fence(strip_ansi(d['text/plain'].rstrip()))}\n:::"
    return ''

def cell_markdown(c: dict, save=None) -> str:
    "Markdown for one processed cell: markdown verbatim, code as a fenced block followed by its outputs."
    src = ''.join(c['source']).rstrip()
    if c['cell_type'] == 'markdown': return '' if src.startswith('<!-- WARNING') else src
    if c['cell_type'] != 'code': return ''
    opts, code = directives(src)
    if opts.get('include') is False: return ''
    parts = [fence(code, 'python')] if code and opts.get('echo', True) is not False else []
    if opts.get('output', True) is not False:
        parts += [m for o in c.get('outputs', []) if (m := output_markdown(o, opts.get('output') == 'asis', save))]
    if not parts: return ''
    return '::: {.cell}\n' + '\n\n'.join(parts) + '\n:::'

def readme():
    "Write README.md from the processed index notebook."
    cfg = get_config()
    nb = json.loads((processed(cfg.readme_nb) / cfg.readme_nb).read_text())
    fm = front_matter(nb)
    head = [f"# {fm['title']}", f"> {fm['description']}"] if fm.get('description') else [f"# {fm.get('title', '')}"]
    body = [m for c in nb['cells'] if (m := cell_markdown(c))]
    # links between notebooks point into nbs/ from the repository root
    body = [re.sub(r'\]\((\w+\.ipynb)(?=[#)])', r'](nbs/\1', m) for m in body]
    note = "<!-- Generated from nbs/index.ipynb by `python dev/docs.py readme`; edit the notebook, not this file. -->"
    (ROOT / 'README.md').write_text('\n\n'.join([note, *head, *body]) + '\n')

# --- the site ------------------------------------------------------------------------------

def quarto_config() -> dict:
    "nbs/_quarto.yml merged (shallowly, per top-level key) with its metadata files (nbs/nbdev.yml)."
    nbs = get_config().nbs_path
    q = yaml.safe_load((nbs / '_quarto.yml').read_text())
    for f in q.get('metadata-files', []):
        for k, v in (yaml.safe_load((nbs / f).read_text()) or {}).items():
            q[k] = {**v, **q.get(k, {})} if isinstance(v, dict) else q.get(k, v)
    return q

def sidebar_entries(items=None, depth=0) -> list[tuple]:
    "`website.sidebar.contents` flattened: ('page', notebook, text-or-None, depth) and ('section', text, depth)."
    if items is None: items = quarto_config()['website']['sidebar']['contents']
    out = []
    for it in items:
        if isinstance(it, str): out.append(('page', it, None, depth))
        elif 'section' in it:
            out.append(('section', it['section'], depth))
            out += sidebar_entries(it.get('contents', []), depth + 1)
        elif 'href' in it: out.append(('page', it['href'], it.get('text'), depth))
        else: raise SystemExit(f"nbs/_quarto.yml: sidebar entry {it!r} has neither a path, `href` nor `section`")
    return out

def sidebar_notebooks() -> list[str]:
    "The notebooks of the sidebar, in order (paths relative to nbs/)."
    return [e[1] for e in sidebar_entries() if e[0] == 'page']

def page_name(nb_path: str, fm: dict) -> str:
    "The HTML file a notebook becomes: nbdev's `output-file` (00_common.ipynb -> common.html), as Quarto does."
    return fm.get('output-file') or Path(nb_path).with_suffix('.html').name

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$pagetitle$ – $site$</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="site.css">
$for(css)$<link rel="stylesheet" href="$css$">
$endfor$<style>$highlighting-css$</style>
</head>
<body>
<nav id="sidebar">$sidebar$</nav>
<main>
<header id="title-block-header"><h1 class="title">$title$</h1>
$if(description)$<div class="description">$description$</div>$endif$</header>
$if(toc)$<nav id="TOC"><h2>On this page</h2>$toc$</nav>$endif$
$body$
</main>
</body>
</html>
"""

CSS = """body { margin: 0; display: flex; font: 16px/1.55 system-ui, sans-serif; color: #222; }
#sidebar { flex: 0 0 15rem; padding: 1rem; background: #f6f7f9; min-height: 100vh; box-sizing: border-box; }
#sidebar a, #sidebar div { display: block; padding: .2rem .4rem; color: #335; text-decoration: none; border-radius: 4px; }
#sidebar a:first-child { font-weight: 600; margin-bottom: .6rem; }
#sidebar a.active { background: #dde4f0; font-weight: 600; }
#sidebar .section { margin-top: .6rem; color: #777; font-size: 90%; }
main { flex: 1; max-width: 52rem; padding: 1rem 2rem 4rem; min-width: 0; }
#TOC { float: right; width: 14rem; margin: 0 0 1rem 1rem; font-size: 90%; }
#TOC h2 { font-size: 100%; margin: 0; } #TOC ul { padding-left: 1rem; }
pre { background: #f6f7f9; padding: .6rem; overflow-x: auto; border-radius: 4px; }
code { font-size: 90%; }
table { border-collapse: collapse; margin: 1rem 0; } th, td { border: 1px solid #ccc; padding: .2rem .5rem; }
img { max-width: 100%; }
"""

def sidebar_html(entries, names: dict, titles: dict, current: str) -> str:
    "The sidebar for one page; the current page's link is marked `active`."
    rows = []
    for e in entries:
        pad = f' style="padding-left:{.4 + e[-1]}rem"' if e[-1] else ''
        if e[0] == 'section': rows.append(f'<div class="section"{pad}>{escape(e[1])}</div>')
        else:
            href = names[e[1]]
            active = ' class="active" aria-current="page"' if href == current else ''
            rows.append(f'<a href="{href}"{active}{pad}>{escape(e[2] or titles[e[1]])}</a>')
    return '\n'.join(rows)

def relink(md: str, names: dict, site_url: str) -> str:
    "Links to notebooks (`00_common.ipynb#x`) and to the published site become links between the pages."
    if site_url: md = md.replace(site_url.rstrip('/') + '/', '')
    return re.sub(r'(?:(?<=\]\()|(?<=href="))([\w./-]+\.ipynb)(?=[#)"])', lambda m: names.get(m[1].removeprefix('./'), m[1]), md)

def copy_assets(nbs: Path, out: Path, css: list[str]):
    "The site's CSS, the CSS files `_quarto.yml` names, and the images markdown cells refer to (e.g. nbs/images/)."
    (out / 'site.css').write_text(CSS)
    for f in css: shutil.copy(nbs / f, out / Path(f).name)
    for f in sorted(nbs.rglob('*')):
        rel = f.relative_to(nbs)
        if f.suffix.lower() in ('.png', '.jpg', '.jpeg', '.gif', '.svg') and not any(p[0] in '._' for p in rel.parts[:-1]):
            (out / rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy(f, out / rel)

def render(nb: dict, meta: dict, out: Path, name: str, template: Path, variables: dict, names: dict, site_url: str):
    "One notebook -> `out/name` through pandoc; its images go to `out/<stem>_files/figure-N.<ext>`."
    figures = itertools.count(1)
    def save(data: bytes, ext: str) -> str:
        f = out / f"{Path(name).stem}_files" / f"figure-{next(figures)}.{ext}"
        f.parent.mkdir(exist_ok=True); f.write_bytes(data)
        return f.relative_to(out).as_posix()
    body = [m for c in nb['cells'] if (m := cell_markdown(c, save))]
    md = relink('---\n' + json.dumps(meta) + '\n---\n\n' + '\n\n'.join(body) + '\n', names, site_url)
    cmd = ['pandoc', '-f', 'markdown', '-t', 'html5', '--standalone', f'--template={template}', '--toc', '--toc-depth=2',
           '--mathml', '--highlight-style=pygments', '--wrap=none', '-o', str(out / name)]
    for k, vs in variables.items(): cmd += [a for v in ([vs] if isinstance(vs, str) else vs) for a in ('-V', f'{k}={v}')]
    r = subprocess.run(cmd, input=md, text=True, capture_output=True)
    if r.returncode: raise SystemExit(f"pandoc failed on {name}:\n{r.stderr}")

def drop_dead_anchors(out: Path, pages: list[str]):
    """nbdev links every backticked symbol to `page.html#symbol`; where the page has no such id (a method without
    a doc heading of its own), link to the page itself rather than to a dead anchor."""
    html = {p: (out / p).read_text() for p in pages}
    ids = {p: set(re.findall(r'\sid="([^"]+)"', h)) for p, h in html.items()}
    fix = lambda m: m[0] if m[2] in ids.get(m[1], {m[2]}) else f'href="{m[1]}"'
    for p, h in html.items():
        if (new := re.sub(r'href="([\w.-]+\.html)#([^"]+)"', fix, h)) != h: (out / p).write_text(new)

def site(out: str = '_site') -> Path:
    "Build the static site into `out`: one HTML page per sidebar notebook, plus the CSS and images."
    cfg, q = get_config(), quarto_config()
    out, nbs = Path(out).resolve(), Path(cfg.nbs_path)
    if out.exists() and any(out.iterdir()) and not (out / 'site.css').exists():
        raise SystemExit(f"{out} exists and is not a site built by this command; pick another --out")
    entries, order = sidebar_entries(q['website']['sidebar']['contents']), sidebar_notebooks()
    if missing := [n for n in order if not (nbs / n).exists()]:
        raise SystemExit(f"nbs/_quarto.yml lists {missing}, but there is no such notebook in {nbs}")
    if stray := sorted({p.name for p in nbs.glob('[!_.]*.ipynb')} - set(order)):
        print(f"note: not in the sidebar of nbs/_quarto.yml, so not on the site: {stray}", file=sys.stderr)
    proc = processed()
    nbjs = {n: json.loads((proc / n).read_text()) for n in order}
    fms = {n: front_matter(nb) for n, nb in nbjs.items()}
    names = {n: page_name(n, fms[n]) for n in order}
    if len(set(names.values())) < len(names): raise SystemExit(f"two notebooks give the same page: {names}")
    titles = {n: str(fms[n].get('title', Path(n).stem)) for n in order}
    css = q.get('format', {}).get('html', {}).get('css', [])
    css = [css] if isinstance(css, str) else css
    shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
    copy_assets(nbs, out, css)
    site_title, site_url = q['website'].get('title') or cfg.title, q['website'].get('site-url', '')
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(4) as pool:
        template = Path(tmp) / 'page.html'; template.write_text(TEMPLATE)
        jobs = []
        for n in order:
            meta = {'title': titles[n], **({'description': str(fms[n]['description'])} if fms[n].get('description') else {})}
            variables = {'site': site_title, 'pagetitle': titles[n], 'css': [Path(f).name for f in css],
                         'sidebar': sidebar_html(entries, names, titles, names[n])}
            jobs.append(pool.submit(render, nbjs[n], meta, out, names[n], template, variables, names, site_url))
        for j in jobs: j.result()  # re-raises a failed render
    drop_dead_anchors(out, list(names.values()))
    print(f"site: {len(order)} pages in {out} (open {out / 'index.html'})")
    return out

if __name__ == '__main__':
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('cmd', nargs='?', default='readme', choices=['readme', 'site'])
    ap.add_argument('--out', default='_site', help="folder for the site (default: _site)")
    a = ap.parse_args()
    readme() if a.cmd == 'readme' else site(a.out)
