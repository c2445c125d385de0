// The installer console: login, cameras (live state over server-sent
// events, masked snapshots), the view editor (commissioning, server-side
// preview, proposals) and the proposals an admin approves.
import { t, language, setLanguage, translate } from './i18n.js';
import { get, post, image, setCSRF } from './api.js';
import { PolygonEditor } from './editor.js';

const main = document.getElementById('main');
let session = null;
let events = null;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'i18n') e.dataset.i18n = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function show(...nodes) {
  if (events && !nodes.some((n) => n.id === 'cameras')) { events.close(); events = null; }
  main.replaceChildren(...nodes);
  translate(main);
}

function message(text, cls = 'msg') { return el('p', { class: cls, role: 'status' }, text); }

async function start() {
  session = await get('/api/session');
  setCSRF(session.csrf);
  document.getElementById('who').textContent = session.logged_in ? `${session.user} (${session.roles.join(', ')})` : '';
  document.getElementById('logout').hidden = !session.logged_in;
  if (!session.logged_in) return loginPage();
  return camerasPage();
}

function loginPage(err) {
  const user = el('input', { id: 'user', name: 'user', autocomplete: 'username', required: true });
  const pw = el('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = el('form', { id: 'login', class: 'card' },
    el('h1', { i18n: 'login' }),
    el('label', { for: 'user', i18n: 'user' }), user,
    el('label', { for: 'password', i18n: 'password' }), pw,
    el('button', { type: 'submit', i18n: 'login' }),
    el('p', { class: 'help', i18n: 'login_help' }));
  if (err) form.append(message(err, 'error'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await post('/api/login', { user: user.value, password: pw.value });
      await start();
    } catch (x) { await get('/api/session').then((s) => setCSRF(s.csrf)); loginPage(x.message); }
  });
  show(form);
}

function badges(s) {
  const b = (ok, yes, no) => el('span', { class: ok ? 'badge ok' : 'badge bad' }, t(ok ? yes : no));
  const box = el('div', { class: 'badges' },
    b(s.online, 'online', 'offline'),
    b(s.locked, 'locked', 'blank'),
    b(s.view_verified, 'verified', 'not_verified'),
    el('span', { class: 'badge' }, `${t('fps')}: ${s.fps_in}/${s.fps_out}`));
  if (s.last_event) box.append(el('span', { class: 'badge' }, `${t('last_event')}: ${s.last_event}`));
  box.append(el('span', { class: 'status' }, s.status || ''));
  return box;
}

async function camerasPage() {
  const cams = await get('/api/cameras');
  const list = el('div', { id: 'cameras', class: 'grid' });
  for (const c of cams) {
    const img = el('img', { class: 'snap', alt: t('snapshot') + ' ' + c.id });
    const card = el('section', { class: 'card camera', 'data-camera': c.id },
      el('h2', {}, c.id), el('p', { class: 'purpose' }, c.purpose),
      el('div', { class: 'state' }, badges(c.state)), img,
      el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'snapshot', i18n: 'snapshot', onclick: async () => {
          try { img.src = await image(`/api/cameras/${encodeURIComponent(c.id)}/snapshot`); } catch (x) { card.append(message(x.message, 'error')); }
        } }),
        el('button', { type: 'button', class: 'edit', i18n: 'edit', onclick: () => editorPage(c) })));
    list.append(card);
  }
  const nav = el('div', { class: 'toolbar' }, el('button', { type: 'button', id: 'to-proposals', i18n: 'proposals', onclick: proposalsPage }));
  show(el('h1', { i18n: 'cameras' }), nav, list);
  events = new EventSource('/api/events');
  events.addEventListener('state', (e) => {
    for (const s of JSON.parse(e.data) || []) {
      const box = list.querySelector(`[data-camera="${CSS.escape(s.id)}"] .state`);
      if (box) box.replaceChildren(badges(s));
    }
  });
  events.addEventListener('expired', () => start());
}

function maskFields(ed, panel) {
  const m = ed.current();
  if (!m) return;
  const input = (key, attrs, value, conv = (v) => v) => el('input', { ...attrs, id: 'mask-' + key, value: value ?? '',
    onchange: (e) => ed.setField(key, conv(e.target.value)) });
  const style = el('select', { id: 'mask-style', onchange: (e) => ed.setField('style', e.target.value) },
    ...['fill', 'pixelate', 'blur'].map((s) => el('option', { value: s, selected: (m.style || 'fill') === s }, t(s))));
  panel.append(
    el('label', { for: 'mask-name', i18n: 'name' }), input('name', {}, m.name),
    el('label', { for: 'mask-style', i18n: 'style' }), style,
    el('label', { for: 'mask-color', i18n: 'color' }), input('color', { type: 'color' }, m.color || '#000000'),
    el('label', { for: 'mask-block', i18n: 'block' }), input('block', { type: 'number', min: 8, max: 256 }, m.block || 16, Number),
    el('label', { for: 'mask-strength', i18n: 'strength' }), input('strength', { type: 'number', min: 6, max: 128 }, m.strength || 12, Number));
}

function maskPanel(ed, panel) {
  panel.replaceChildren(el('h3', { i18n: 'masks' }));
  const list = el('ul', { class: 'masklist' });
  ed.masks.forEach((m, i) => list.append(el('li', {}, el('button', { type: 'button', class: i === ed.sel ? 'sel' : '',
    onclick: () => ed.select(i) }, `${m.name} (${m.polygon.length})`))));
  panel.append(list, el('div', { class: 'row' },
    el('button', { type: 'button', id: 'new-mask', i18n: 'new_mask', onclick: () => ed.addMask('mask-' + (ed.masks.length + 1)) }),
    el('button', { type: 'button', id: 'delete-mask', i18n: 'delete_mask', onclick: () => ed.deleteMask() })));
  maskFields(ed, panel);
  translate(panel);
}

async function editorPage(cam, viewIndex = 0) {
  const view = cam.views[viewIndex];
  const base = `/api/cameras/${encodeURIComponent(cam.id)}`;
  const pic = el('img', { id: 'picture', alt: cam.id });
  pic.addEventListener('load', () => pic.parentElement.style.setProperty('--aspect', pic.naturalWidth / pic.naturalHeight));
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.id = 'overlay';
  const panel = el('div', { class: 'panel', id: 'mask-panel' });
  const status = el('div', { id: 'editor-status' });
  const ed = new PolygonEditor(svg, view.masks, (e) => maskPanel(e, panel));
  maskPanel(ed, panel);
  const say = (text, cls) => status.replaceChildren(message(text, cls));
  const render = async () => {
    try { pic.src = await image(base + '/preview', { preset: view.preset, masks: ed.masks.filter((m) => m.polygon.length >= 3) }); pic.dataset.kind = 'preview'; } catch (x) { say(x.message, 'error'); }
  };
  const comm = commissioningBox(cam, base, pic, say, ed);
  const views = el('select', { id: 'view', onchange: (e) => editorPage(cam, Number(e.target.value)) },
    ...cam.views.map((v, i) => el('option', { value: i, selected: i === viewIndex }, v.preset ? `${t('preset')} ${v.preset}` : t('fixed_view'))));
  const note = el('input', { id: 'note', placeholder: t('note') });
  const tools = el('div', { class: 'toolbar' },
    el('button', { type: 'button', id: 'back', i18n: 'back', onclick: camerasPage }), views,
    el('button', { type: 'button', id: 'undo', i18n: 'undo', onclick: () => ed.undo() }),
    el('button', { type: 'button', id: 'redo', i18n: 'redo', onclick: () => ed.redo() }),
    el('button', { type: 'button', id: 'delete-point', i18n: 'delete_point', onclick: () => ed.deletePoint() }),
    el('label', {}, el('input', { type: 'checkbox', id: 'snap', checked: true, onchange: (e) => { ed.snap = e.target.checked; } }), ' ', t('snap')),
    el('button', { type: 'button', id: 'render', i18n: 'render', onclick: render }));
  const save = el('button', { type: 'button', id: 'save', i18n: 'save', onclick: async () => {
    try { const p = await (await post(base + '/proposals', { preset: view.preset, masks: ed.masks, note: note.value })).json(); say(t('saved') + ' ' + p.id, 'ok'); } catch (x) { say(x.message, 'error'); }
  } });
  show(el('h1', {}, `${t('edit')}: ${cam.id}`), tools,
    el('div', { class: 'editor' }, el('div', { class: 'stage' }, pic, svg), el('div', { class: 'side' }, panel, comm, el('div', { class: 'row' }, note, save), status)),
    el('p', { class: 'help', i18n: 'editor_help' }));
  await render();
}

function commissioningBox(cam, base, pic, say, ed) {
  const box = el('div', { class: 'panel', id: 'commissioning' }, el('h3', { i18n: 'commissioning' }), el('p', { class: 'help', i18n: 'comm_help' }));
  const c = session.commissioning;
  const still = async () => {
    try { pic.src = await image(base + '/still'); pic.dataset.kind = 'still'; } catch (x) { say(x.message, 'error'); }
  };
  const redo = () => box.replaceWith(commissioningBox(cam, base, pic, say, ed));
  if (c && c.camera === cam.id) {
    box.append(message(`${t('comm_until')} ${new Date(c.until).toLocaleTimeString(language())}`),
      el('button', { type: 'button', id: 'still', i18n: 'unmasked', onclick: still }),
      el('button', { type: 'button', id: 'close-comm', i18n: 'close_comm', onclick: async () => { await post('/api/commissioning/close'); session = await get('/api/session'); redo(); } }));
    if (cam.ptz) box.append(ptzPanel(base, still, say, ed));
  } else {
    const reason = el('input', { id: 'reason', placeholder: t('reason') });
    box.append(reason, el('button', { type: 'button', id: 'open-comm', i18n: 'open_comm', onclick: async () => {
      try { await post(base + '/commissioning', { reason: reason.value }); session = await get('/api/session'); redo(); } catch (x) { say(x.message, 'error'); }
    } }));
  }
  translate(box);
  return box;
}

// ptzPanel moves a PTZ camera in commissioning (buttons, or the keyboard
// on the pad: arrows pan/tilt, + and - zoom) and saves its position, with
// the editor's masks, as a proposed preset. The agent moves it through its
// PTZ lock; the stream stays blank until the session ends.
function ptzPanel(base, still, say, ed) {
  const pos = el('p', { id: 'ptz-pos', class: 'help' });
  const step = el('select', { id: 'ptz-step' }, ...[0.01, 0.05, 0.2].map((v) => el('option', { value: v, selected: v === 0.05 }, String(v))));
  let timer = null;
  const move = async (pan, tilt, zoom) => {
    const k = Number(step.value);
    try {
      const r = await (await post(base + '/ptz', { relative: true, pan: pan * k, tilt: tilt * k, zoom: zoom * k })).json();
      const p = r.position;
      pos.textContent = `${t('position')}: pan ${p.pan.toFixed(3)} tilt ${p.tilt.toFixed(3)} zoom ${p.zoom.toFixed(3)}`;
      pos.dataset.moved = '1';
      clearTimeout(timer);
      timer = setTimeout(still, 900); // the camera's motor needs a moment
    } catch (x) { say(x.message, 'error'); }
  };
  const b = (id, label, f) => el('button', { type: 'button', id, 'aria-label': t(id.replace('ptz-', '').replace('-', '_')), onclick: f }, label);
  const pad = el('div', { id: 'ptz', class: 'ptzpad', tabindex: 0 },
    b('ptz-left', '◀', () => move(-1, 0, 0)), b('ptz-up', '▲', () => move(0, 1, 0)), b('ptz-down', '▼', () => move(0, -1, 0)),
    b('ptz-right', '▶', () => move(1, 0, 0)), b('ptz-zoom-in', '+', () => move(0, 0, 1)), b('ptz-zoom-out', '−', () => move(0, 0, -1)));
  pad.addEventListener('keydown', (e) => {
    const keys = { ArrowLeft: [-1, 0, 0], ArrowRight: [1, 0, 0], ArrowUp: [0, 1, 0], ArrowDown: [0, -1, 0], '+': [0, 0, 1], '=': [0, 0, 1], '-': [0, 0, -1] };
    if (keys[e.key]) { e.preventDefault(); move(...keys[e.key]); }
  });
  const name = el('input', { id: 'preset-name', placeholder: t('preset_name'), maxlength: 40 });
  const save = el('button', { type: 'button', id: 'save-preset', i18n: 'save_preset', onclick: async () => {
    try {
      const p = await (await post(base + '/presets', { name: name.value, masks: ed.masks.filter((m) => m.polygon.length >= 3) })).json();
      say(`${t('preset_saved')} ${p.preset} (${p.id})`, 'ok');
    } catch (x) { say(x.message, 'error'); }
  } });
  return el('div', { class: 'ptz' }, el('h3', { i18n: 'ptz' }), el('p', { class: 'help', i18n: 'ptz_help' }),
    el('label', { for: 'ptz-step', i18n: 'step' }), step, pad, pos, name, save);
}

async function proposalsPage() {
  const list = await get('/api/proposals');
  const out = el('div', { id: 'proposals' });
  if (!list.length) out.append(message(t('none')));
  for (const p of list) {
    const card = el('section', { class: 'card proposal', 'data-proposal': p.id },
      el('h2', {}, `${p.camera}${p.preset ? ' / ' + p.preset : ''}${p.name ? ' (' + p.name + ')' : ''}`),
      el('p', {}, `${t('status_' + p.status)} · ${t('by')} ${p.by} · ${new Date(p.created).toLocaleString(language())}`),
      el('p', {}, p.masks.map((m) => m.name).join(', ')));
    if (p.position) card.append(el('p', { class: 'newpreset' }, `${t('new_preset')}: pan ${p.position.pan.toFixed(3)} tilt ${p.position.tilt.toFixed(3)} zoom ${p.position.zoom.toFixed(3)}`));
    if (p.note) card.append(el('p', { class: 'help' }, p.note));
    if (p.approval) card.append(el('p', {}, `${t('approved_by')} ${p.approval.by}, ${p.approval.date}, ${p.approval.document}`));
    if (p.diff) card.append(el('p', { class: 'diff' }, p.diff));
    if (p.status === 'proposed' && session.can_approve) card.append(approveForm(p, card));
    out.append(card);
  }
  show(el('h1', { i18n: 'proposals' }), el('div', { class: 'toolbar' }, el('button', { type: 'button', id: 'back', i18n: 'back', onclick: camerasPage })), out);
}

function approveForm(p, card) {
  const by = el('input', { name: 'by', placeholder: t('approved_by'), required: true });
  const date = el('input', { name: 'date', type: 'date', required: true, value: new Date().toISOString().slice(0, 10) });
  const doc = el('input', { name: 'document', placeholder: t('document'), required: true });
  const form = el('form', { class: 'approve' }, by, date, doc, el('button', { type: 'submit', i18n: 'approve' }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try { await post(`/api/proposals/${encodeURIComponent(p.id)}/approve`, { by: by.value, date: date.value, document: doc.value }); await proposalsPage(); } catch (x) { card.append(message(x.message, 'error')); }
  });
  return form;
}

document.getElementById('lang').addEventListener('click', () => {
  setLanguage(language() === 'it' ? 'en' : 'it');
  document.getElementById('lang').textContent = language() === 'it' ? 'EN' : 'IT';
  start();
});
document.getElementById('logout').addEventListener('click', async () => { await post('/api/logout'); start(); });
setLanguage(language());
document.getElementById('lang').textContent = language() === 'it' ? 'EN' : 'IT';
translate(document.body);
start().catch((x) => show(message(x.message, 'error')));
