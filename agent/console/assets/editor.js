// PolygonEditor edits a view's masks on an SVG laid over the picture:
// points in [0,1] (x right, y down), with mouse, touch (pointer events)
// and keyboard, undo/redo and snapping to the frame edge. It draws only
// outlines to edit; what the masks hide is rendered by Velo on the server.
const SVGNS = 'http://www.w3.org/2000/svg';
const SNAP = 0.02;

export class PolygonEditor {
  constructor(svg, masks, onChange) {
    this.svg = svg;
    this.masks = structuredClone(masks);
    this.onChange = onChange;
    this.sel = this.masks.length ? 0 : -1; // selected mask
    this.pt = -1;                          // selected point
    this.snap = true;
    this.undoStack = [];
    this.redoStack = [];
    this.drag = null;
    svg.setAttribute('viewBox', '0 0 1000 1000');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.tabIndex = 0;
    svg.addEventListener('pointerdown', (e) => this.down(e));
    svg.addEventListener('pointermove', (e) => this.move(e));
    svg.addEventListener('pointerup', (e) => this.up(e));
    svg.addEventListener('pointercancel', (e) => this.up(e));
    svg.addEventListener('keydown', (e) => this.key(e));
    this.draw();
  }

  snapshot() { return JSON.stringify({ m: this.masks, s: this.sel, p: this.pt }); }
  restore(s) { const o = JSON.parse(s); this.masks = o.m; this.sel = o.s; this.pt = o.p; }
  record() { this.undoStack.push(this.snapshot()); if (this.undoStack.length > 200) this.undoStack.shift(); this.redoStack = []; }
  undo() { if (!this.undoStack.length) return; this.redoStack.push(this.snapshot()); this.restore(this.undoStack.pop()); this.changed(); }
  redo() { if (!this.redoStack.length) return; this.undoStack.push(this.snapshot()); this.restore(this.redoStack.pop()); this.changed(); }
  changed() { this.draw(); this.onChange(this); }

  current() { return this.sel >= 0 ? this.masks[this.sel] : null; }

  addMask(name) {
    this.record();
    this.masks.push({ name, style: 'fill', color: '#000000', polygon: [] });
    this.sel = this.masks.length - 1;
    this.pt = -1;
    this.changed();
  }
  deleteMask() {
    if (this.sel < 0) return;
    this.record();
    this.masks.splice(this.sel, 1);
    this.sel = Math.min(this.sel, this.masks.length - 1);
    this.pt = -1;
    this.changed();
  }
  select(i) { this.sel = i; this.pt = -1; this.changed(); }
  setField(field, value) { const m = this.current(); if (!m) return; this.record(); m[field] = value; this.changed(); }

  clampSnap(v) {
    v = Math.min(1, Math.max(0, v));
    if (this.snap) { if (v < SNAP) return 0; if (v > 1 - SNAP) return 1; }
    return Math.round(v * 10000) / 10000;
  }
  toPoint(e) {
    const r = this.svg.getBoundingClientRect();
    return { x: this.clampSnap((e.clientX - r.left) / r.width), y: this.clampSnap((e.clientY - r.top) / r.height) };
  }

  down(e) {
    this.svg.focus();
    const m = this.current();
    const hit = e.target.dataset && e.target.dataset.pt !== undefined ? e.target : null;
    if (hit) {
      this.sel = Number(hit.dataset.mask);
      this.pt = Number(hit.dataset.pt);
      this.record();
      this.drag = { id: e.pointerId, moved: false };
      this.svg.setPointerCapture(e.pointerId);
      this.changed();
      e.preventDefault();
      return;
    }
    if (!m) return;
    this.record();
    const p = this.toPoint(e);
    const at = this.pt >= 0 ? this.pt + 1 : m.polygon.length;
    m.polygon.splice(at, 0, p);
    this.pt = at;
    this.changed();
    e.preventDefault();
  }
  move(e) {
    if (!this.drag || this.drag.id !== e.pointerId) return;
    const m = this.current();
    m.polygon[this.pt] = this.toPoint(e);
    this.drag.moved = true;
    this.draw();
  }
  up(e) {
    if (!this.drag || this.drag.id !== e.pointerId) return;
    if (!this.drag.moved) this.undoStack.pop(); // a click that only selected
    this.drag = null;
    this.changed();
  }
  deletePoint() {
    const m = this.current();
    if (!m || this.pt < 0) return;
    this.record();
    m.polygon.splice(this.pt, 1);
    this.pt = Math.min(this.pt, m.polygon.length - 1);
    this.changed();
  }
  key(e) {
    const m = this.current();
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === 'z') { e.shiftKey ? this.redo() : this.undo(); e.preventDefault(); return; }
    if (mod && e.key.toLowerCase() === 'y') { this.redo(); e.preventDefault(); return; }
    if (!m) return;
    const step = e.shiftKey ? 0.05 : 0.005;
    const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
    if (d && this.pt >= 0) {
      this.record();
      const p = m.polygon[this.pt];
      m.polygon[this.pt] = { x: this.clampSnap(p.x + d[0]), y: this.clampSnap(p.y + d[1]) };
      this.changed();
      e.preventDefault();
    } else if (e.key === 'Delete' || e.key === 'Backspace') {
      this.deletePoint();
      e.preventDefault();
    } else if (e.key === 'Tab' && m.polygon.length) {
      this.pt = (this.pt + (e.shiftKey ? m.polygon.length - 1 : 1)) % m.polygon.length;
      this.changed();
      e.preventDefault();
    } else if (e.key.toLowerCase() === 'n') {
      this.record();
      const n = m.polygon.length;
      let p = { x: 0.5, y: 0.5 };
      if (n) { const a = m.polygon[Math.max(this.pt, 0)], b = m.polygon[(Math.max(this.pt, 0) + 1) % n]; p = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }; }
      this.pt = n ? Math.max(this.pt, 0) + 1 : 0;
      m.polygon.splice(this.pt, 0, p);
      this.changed();
      e.preventDefault();
    }
  }

  draw() {
    const svg = this.svg;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    this.masks.forEach((m, i) => {
      const poly = document.createElementNS(SVGNS, 'polygon');
      poly.setAttribute('points', m.polygon.map((p) => `${p.x * 1000},${p.y * 1000}`).join(' '));
      poly.setAttribute('class', i === this.sel ? 'mask selected' : 'mask');
      svg.appendChild(poly);
      if (i !== this.sel) return;
      m.polygon.forEach((p, j) => {
        const c = document.createElementNS(SVGNS, 'circle');
        c.setAttribute('cx', p.x * 1000);
        c.setAttribute('cy', p.y * 1000);
        c.setAttribute('r', 12);
        c.setAttribute('class', j === this.pt ? 'pt active' : 'pt');
        c.dataset.mask = i;
        c.dataset.pt = j;
        svg.appendChild(c);
      });
    });
  }
}
