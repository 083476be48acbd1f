// Gale's job dashboard. Plain JavaScript, no build step: it reads the
// server's stream (/api/stream, server-sent events) and draws the job.
// The timeline and the concurrency chart are canvases, so a job of many
// thousand tasks costs rectangles, not DOM nodes.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';
  const STATE = ['running', 'done', 'failed', 'lost', 'cancelled'];

  // What the page knows; the stream's messages update it.
  const S = {
    pinned: null,     // the job the user chose, or null to follow the newest
    jobs: [],
    job: null,        // the shown job: the server's jobView, merged
    attempts: [],     // by index: [index, stage, task, attempt, start, end, state, instance, cold, notStarted]
    errors: {},       // attempt index -> error text
    instances: [],
    received: 0,      // performance.now() when the last message came
    updates: 0,
    problems: [],
    highlight: null,  // [stage, task] to outline in the timeline
    drawn: null,      // what the last timeline draw drew (for hovering and tests)
  };

  // ---- formatting ----
  const nf = new Intl.NumberFormat('en-US');
  function num(n) { return nf.format(n || 0); }
  function bytes(n) {
    n = n || 0;
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)) + ' ' + u[i];
  }
  function dur(us) {
    if (us < 0) return '—';
    const s = us / 1e6;
    if (s < 1) return (us / 1000).toFixed(us < 10000 ? 1 : 0) + ' ms';
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + ' s';
    return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  }
  function clock(ms) { return ms ? new Date(ms).toLocaleTimeString() : '—'; }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- the stream ----
  let es = null;
  function connect() {
    if (es) es.close();
    const q = S.pinned ? '?job=' + encodeURIComponent(S.pinned) : '';
    es = new EventSource('/api/stream' + q);
    es.onopen = () => setConn('live', 'live');
    es.onmessage = (ev) => {
      S.updates++;
      apply(JSON.parse(ev.data));
      setConn(S.job && S.job.end ? 'job finished' : 'live', 'live');
    };
    es.onerror = () => {
      // EventSource reconnects by itself; the server resumes from the
      // last message's id.
      setConn(S.job && S.job.end ? 'server gone (the page keeps the final state)' : 'reconnecting…', 'down');
    };
  }
  function setConn(text, cls) {
    const c = $('conn');
    c.textContent = text;
    c.className = 'conn ' + cls;
  }

  function apply(msg) {
    S.jobs = msg.jobs || [];
    S.problems = msg.problems || [];
    const v = msg.job;
    if (v) {
      if (v.full || !S.job || S.job.id !== v.id) {
        S.job = { plan: { stages: [], shuffles: [] } };
        S.attempts = [];
        S.errors = {};
        S.instances = [];
        S.highlight = v.failed ? [v.failed[0], v.failed[1]] : null;
      }
      const plan = v.plan || S.job.plan;
      Object.assign(S.job, v);
      S.job.plan = plan;
      S.instances.length = v.instances_from;
      for (const name of v.instances) S.instances.push(name);
      for (const a of v.attempts) S.attempts[a[0]] = a;
      for (const k in (v.errors || {})) S.errors[k] = v.errors[k];
      if (v.failed) S.highlight = [v.failed[0], v.failed[1]];
      S.received = performance.now();
    }
    schedule();
  }

  // now returns the job's clock (µs since it started), running on between
  // messages while the job runs.
  function now() {
    const j = S.job;
    if (!j) return 0;
    if (j.end) return j.now;
    return j.now + (performance.now() - S.received) * 1000;
  }

  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  }

  function render() {
    renderJobs();
    const j = S.job;
    $('main').hidden = !j;
    if (!j) return;
    renderSummary(j);
    renderError(j);
    renderProblems(j);
    renderTotals(j);
    renderDag(j);
    renderStages(j);
    renderTimeline(j);
    renderConcurrency(j);
  }

  // ---- job list ----
  function renderJobs() {
    const ul = $('joblist');
    ul.textContent = '';
    $('nojobs').hidden = S.jobs.length > 0;
    $('follow').className = 'follow' + (S.pinned ? '' : ' on');
    for (const js of S.jobs.slice().reverse()) {
      const li = el('li');
      const b = el('button');
      b.type = 'button';
      b.dataset.job = js.id;
      if (S.job && S.job.id === js.id) b.classList.add('selected');
      b.appendChild(el('span', 'jid', js.id + ' '));
      b.appendChild(el('span', 'badge ' + js.status, js.status));
      b.appendChild(el('span', 'jmeta', js.backend + ' · ' + num(js.done) + '/' + num(js.tasks) + ' tasks · ' + clock(js.start)));
      b.onclick = () => { S.pinned = js.id; connect(); };
      li.appendChild(b);
      ul.appendChild(li);
    }
  }

  // ---- summary, error, totals ----
  function totalsOf(j) {
    let tasks = 0, done = 0, running = 0;
    j.plan.stages.forEach((s, i) => {
      tasks += s.tasks;
      done += (j.stages[i] || {}).done || 0;
      running += (j.stages[i] || {}).running || 0;
    });
    return { tasks, done, running };
  }

  function renderSummary(j) {
    const sec = $('summary');
    sec.textContent = '';
    const t = el('div', 'title');
    t.appendChild(document.createTextNode('Job '));
    t.appendChild(el('span', 'jobid', j.id));
    t.appendChild(document.createTextNode(' '));
    const badge = el('span', 'badge ' + j.status, j.status);
    badge.id = 'status';
    t.appendChild(badge);
    sec.appendChild(t);
    const c = totalsOf(j);
    const facts = [j.backend ? 'on ' + j.backend : null, 'started ' + clock(j.start),
      (j.end ? 'took ' : 'running for ') + dur(now()),
      num(c.done) + ' of ' + num(c.tasks) + ' tasks done', c.running ? num(c.running) + ' running' : null,
      j.concurrency ? 'at most ' + num(j.concurrency) + ' at once' : null,
      j.totals && j.totals.outputs ? 'output in ' + j.totals.outputs.join(', ') : null];
    sec.appendChild(el('div', 'facts', facts.filter(Boolean).join(' · ')));
    sec.appendChild(progressBar(c.done, c.running, c.tasks));
  }

  function progressBar(done, running, tasks) {
    const bar = el('div', 'bar');
    const d = el('i', 'done'), r = el('i', 'running');
    d.style.width = (tasks ? 100 * done / tasks : 0) + '%';
    r.style.width = (tasks ? 100 * running / tasks : 0) + '%';
    bar.appendChild(d);
    bar.appendChild(r);
    return bar;
  }

  function renderError(j) {
    const sec = $('error');
    sec.hidden = j.status !== 'failed';
    if (sec.hidden) return;
    // The first lines say what failed; a stack trace after them folds.
    const text = j.error || '(no error message)';
    const lines = text.split('\n');
    $('errtext').textContent = lines.slice(0, 4).join('\n') + (lines.length > 4 ? '\n…' : '');
    $('errmore').hidden = lines.length <= 4;
    $('errmoresum').textContent = 'the whole error (' + lines.length + ' lines)';
    $('errfull').textContent = text;
    const where = $('errwhere');
    where.textContent = '';
    if (j.failed) {
      const [st, task, att] = j.failed;
      const name = (j.plan.stages[st] || {}).name || '';
      where.appendChild(document.createTextNode('Failing task: '));
      const b = el('button', '', 'stage ' + st + ' task ' + task + ' (attempt ' + att + ')');
      b.type = 'button';
      b.id = 'failingtask';
      b.onclick = () => { S.highlight = [st, task]; render(); $('timeline').scrollIntoView({ block: 'center' }); };
      where.appendChild(b);
      where.appendChild(document.createTextNode(' — ' + name));
    } else {
      where.textContent = 'The job failed outside its tasks.';
    }
  }

  function renderProblems(j) {
    const all = S.problems.concat(j.problems || []);
    $('problems').hidden = all.length === 0;
    const ul = $('problemlist');
    ul.textContent = '';
    for (const p of all) ul.appendChild(el('li', '', p));
  }

  function renderTotals(j) {
    const sec = $('totals');
    sec.textContent = '';
    const card = (value, label, id) => {
      const c = el('div', 'card');
      const b = el('b', '', value);
      if (id) b.id = id;
      c.appendChild(b);
      c.appendChild(el('span', '', label));
      sec.appendChild(c);
    };
    let m = { records_in: 0, object_bytes_read: 0, object_bytes_written: 0, shuffle_bytes_written: 0 };
    for (const s of j.stages || []) for (const k in m) m[k] += s.metrics[k] || 0;
    const t = j.totals;
    card(t ? num(t.invocations) : '—', t ? 'invocations' : 'invocations (at the end)', 'tot-invocations');
    card(t ? t.billed_seconds.toFixed(1) + ' s' : '—', 'billed time', 'tot-billed');
    card(t ? (t.cost_usd > 0 ? '$' + t.cost_usd.toFixed(6) : 'not priced') : '—', 'cost estimate', 'tot-cost');
    if (t && t.simulated_seconds > 0) card(dur(t.simulated_seconds * 1e6), 'simulated makespan on ' + j.backend, 'tot-sim');
    card(num(t ? t.throttled : (j.throttles || []).reduce((a, x) => a + x[1], 0)), 'throttled', 'tot-throttled');
    card(bytes(m.object_bytes_read), 'input read');
    card(bytes(m.object_bytes_written), 'output written');
    card(bytes(m.shuffle_bytes_written), 'shuffle written');
    let stored = 0;
    for (const k in (j.stored || {})) stored += j.stored[k];
    card(bytes(stored), 'shuffle stored');
  }

  // ---- the plan ----
  function stageStatus(j, i) {
    const s = j.stages[i] || {};
    if (j.failed && j.failed[0] === i) return 'failed';
    if (s.ended) return 'done';
    if (s.start >= 0) return j.end ? 'stopped' : 'running';
    return 'pending';
  }

  function renderDag(j) {
    const g = $('dag');
    const stages = j.plan.stages;
    const shuffles = j.plan.shuffles || [];
    // Layers: a stage sits right of every stage it depends on.
    const layer = [];
    stages.forEach((s, i) => {
      layer[i] = 0;
      for (const d of s.deps || []) layer[i] = Math.max(layer[i], layer[d] + 1);
    });
    const W = 270, GAP = 220, PAD = 12;
    const heights = stages.map((s) => 74 + 14 * Math.min(s.ops.length, 8));
    const pos = [], colY = [];
    stages.forEach((s, i) => {
      const L = layer[i];
      colY[L] = colY[L] || PAD;
      pos[i] = { x: PAD + L * (W + GAP), y: colY[L], h: heights[i] };
      colY[L] += heights[i] + 26;
    });
    const width = PAD * 2 + (Math.max(0, ...layer) + 1) * (W + GAP) - GAP;
    const height = Math.max(60, ...colY) + PAD;
    g.setAttribute('width', width);
    g.setAttribute('height', height);
    g.textContent = '';
    const edges = svg('g', { class: 'edges' });
    const labels = svg('g', { class: 'labels' });
    g.appendChild(edges);
    stages.forEach((s, i) => {
      for (const d of s.deps || []) {
        const a = pos[d], b = pos[i];
        const x1 = a.x + W, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2;
        const sh = shuffles.find((x) => x.consumer === i && x.producers.includes(d));
        const sampling = !sh && stages[d].role === 'sampling';
        const mx = (x1 + x2) / 2;
        edges.appendChild(svg('path', { class: 'edge' + (sampling ? ' sampling' : ''), 'marker-end': 'url(#arrow)',
          d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 4},${y2}`, 'data-from': d, 'data-to': i }));
        let lines;
        if (sh) {
          const written = sh.producers.reduce((a, p) => a + ((j.stages[p] || {}).metrics || {}).shuffle_bytes_written || 0, 0);
          const read = ((j.stages[i] || {}).metrics || {}).shuffle_bytes_read || 0;
          const stored = (j.stored || {})[sh.id];
          lines = ['shuffle ' + sh.id + ': ' + sh.strategy, num(sh.partitions) + ' partitions' + (sh.combined ? ', combined' : '') + (sh.sort ? ', sorted' : ''),
            'written ' + bytes(written) + ', read ' + bytes(read), 'stored ' + (stored === undefined ? '—' : bytes(stored))];
        } else if (sampling) {
          lines = ['key samples', '(split points)'];
        } else {
          lines = ['after'];
        }
        const ly = (y1 + y2) / 2 - lines.length * 6.5 + 9;
        const lw = Math.min(GAP - 16, 12 + 6 * Math.max(...lines.map((t) => t.length)));
        const lg = svg('g', { class: 'elabel', 'data-shuffle': sh ? sh.id : '' });
        lg.appendChild(svg('rect', { class: 'elabelbg', x: mx - lw / 2, y: ly - 11, width: lw, height: lines.length * 13 + 4, rx: 3 }));
        lines.forEach((t, k) => lg.appendChild(svg('text', { class: 'elabel', x: mx, y: ly + k * 13, 'text-anchor': 'middle' }, t)));
        labels.appendChild(lg);
      }
    });
    const defs = svg('defs', {});
    const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' });
    marker.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#8891a3' }));
    defs.appendChild(marker);
    g.appendChild(defs);
    stages.forEach((s, i) => {
      const p = pos[i], st = j.stages[i] || { done: 0, running: 0, failed: 0 };
      const status = stageStatus(j, i);
      const node = svg('g', { class: 'node ' + status, 'data-stage': i, transform: `translate(${p.x},${p.y})` });
      node.appendChild(svg('rect', { class: 'box', width: W, height: p.h, rx: 5 }));
      node.appendChild(svg('text', { class: 'head', x: 8, y: 16 }, 'stage ' + i + (s.role === 'sampling' ? ' (sampling)' : '') + ' · ' + status));
      node.appendChild(svg('text', { class: 'input', x: 8, y: 31 }, clip('reads ' + s.input + (s.shuffle >= 0 ? ' (shuffle ' + s.shuffle + ')' : ''), 44)));
      s.ops.slice(0, 8).forEach((op, k) => {
        const t = s.ops.length > 8 && k === 7 ? '… ' + (s.ops.length - 7) + ' more' : opLine(op);
        node.appendChild(svg('text', { class: 'op', x: 14, y: 46 + 14 * k }, clip(t, 42)));
      });
      const by = p.h - 24;
      const frac = (n) => (s.tasks ? (W - 16) * n / s.tasks : 0);
      node.appendChild(svg('rect', { x: 8, y: by, width: W - 16, height: 7, rx: 3, fill: '#c9ced8' }));
      node.appendChild(svg('rect', { x: 8, y: by, width: frac(st.done), height: 7, rx: 3, fill: '#3b7dd8' }));
      node.appendChild(svg('rect', { x: 8 + frac(st.done), y: by, width: frac(st.running), height: 7, fill: '#7fb3f0' }));
      node.appendChild(svg('text', { class: 'counts', x: 8, y: p.h - 6 },
        `${num(st.done)}/${num(s.tasks)} done · ${num(st.running)} running · ${num(st.failed)} failed`));
      g.appendChild(node);
    });
    g.appendChild(labels);
  }
  function opLine(op) {
    const mark = { narrow: '→', flatten: '⊕', 'shuffle-write': '⇉', sink: '▣', sample: '◔' }[op.kind] || '·';
    return mark + ' ' + op.label + (op.kind === 'shuffle-write' ? ' (to shuffle ' + op.shuffle + ')' : '');
  }
  function clip(t, n) { return t.length > n ? t.slice(0, n - 1) + '…' : t; }

  // ---- stage table ----
  function renderStages(j) {
    const tb = $('stages').tBodies[0];
    tb.textContent = '';
    j.plan.stages.forEach((s, i) => {
      const st = j.stages[i] || { metrics: {} };
      const m = st.metrics || {};
      const tr = el('tr');
      tr.dataset.stage = i;
      const status = stageStatus(j, i);
      if (status === 'failed') tr.className = 'failed';
      const wall = st.start >= 0 ? (st.end >= 0 ? st.end - st.start : now() - st.start) : -1;
      const cells = [i, s.name, status, num(s.tasks), num(st.pending), num(st.running), num(st.done), num(st.failed),
        num(st.retries), num(m.records_in), num(m.records_out), bytes(m.object_bytes_read), bytes(m.object_bytes_written),
        bytes(m.shuffle_bytes_written), bytes(m.shuffle_bytes_read), m.spill_runs ? bytes(m.spill_bytes) : '—', dur(wall)];
      const keys = ['id', 'name', 'status', 'tasks', 'pending', 'running', 'done', 'failed', 'retries', 'records_in',
        'records_out', 'input_read', 'output_written', 'shuffle_written', 'shuffle_read', 'spilled', 'wall'];
      cells.forEach((c, k) => {
        const td = el('td', k === 1 ? 'name' : '', String(c));
        td.dataset.k = keys[k];
        tr.appendChild(td);
      });
      tb.appendChild(tr);
    });
  }

  // ---- timeline ----
  // Each stage's attempts are packed into lanes (an attempt takes the
  // first lane free at its start), so a stage needs as many lanes as it
  // had attempts at once, however many tasks it has.
  function layoutTimeline(j, tnow) {
    const byStage = j.plan.stages.map(() => []);
    for (const a of S.attempts) if (a && byStage[a[1]]) byStage[a[1]].push(a);
    const sections = [];
    let lanesTotal = 0;
    byStage.forEach((list, i) => {
      list.sort((x, y) => x[4] - y[4] || x[0] - y[0]);
      const laneEnd = [], lane = new Map();
      for (const a of list) {
        const end = a[5] < 0 ? tnow : a[5];
        let k = laneEnd.findIndex((e) => e <= a[4]);
        if (k < 0) { k = laneEnd.length; laneEnd.push(end); } else laneEnd[k] = end;
        lane.set(a[0], k);
      }
      sections.push({ stage: i, list, lane, lanes: Math.max(1, laneEnd.length) });
      lanesTotal += Math.max(1, laneEnd.length);
    });
    return { sections, lanesTotal };
  }

  function renderTimeline(j) {
    const cv = $('timeline');
    const tnow = now();
    const { sections, lanesTotal } = layoutTimeline(j, tnow);
    const HEAD = 16, AXIS = 22, LEFT = 8;
    // Rows shrink as lanes grow, down to a pixel; past that the canvas
    // grows (scroll), never the DOM.
    const rowH = Math.max(1, Math.min(12, Math.floor(600 / Math.max(1, lanesTotal))));
    const height = AXIS + sections.length * (HEAD + 4) + lanesTotal * rowH + 6;
    const width = cv.parentElement.clientWidth || 900;
    const dpr = window.devicePixelRatio || 1;
    cv.width = width * dpr;
    cv.height = height * dpr;
    cv.style.height = height + 'px';
    const ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const span = Math.max(tnow, 1000);
    const plotW = width - LEFT - 10;
    const X = (t) => LEFT + plotW * Math.max(0, t) / span;
    axis(ctx, X, span, width, height, AXIS);
    const css = getComputedStyle(document.documentElement);
    const col = (n) => css.getPropertyValue('--' + n).trim();
    const drawn = { bars: 0, cold: 0, retries: 0, failed: 0, notStarted: 0, lost: 0, cancelled: 0, running: 0, highlighted: null,
      throttleMarks: 0, lanes: lanesTotal, rowH, rects: [], rowsTop: AXIS };
    let y = AXIS;
    for (const sec of sections) {
      const s = j.plan.stages[sec.stage];
      ctx.fillStyle = '#1d2330';
      ctx.font = '600 11px system-ui, sans-serif';
      ctx.fillText('stage ' + sec.stage + ' · ' + clip(s.name, 80) + ' · ' + num(s.tasks) + ' tasks, ' + sec.lanes + ' lane(s)', LEFT, y + 12);
      y += HEAD;
      ctx.fillStyle = '#f0f2f5';
      ctx.fillRect(LEFT, y, plotW, sec.lanes * rowH);
      for (const a of sec.list) {
        const k = sec.lane.get(a[0]);
        const x0 = X(a[4]), x1 = X(a[5] < 0 ? tnow : a[5]);
        // A pixel of space before the next bar of the lane, where there is room.
        const w = Math.max(1, x1 - x0 - (x1 - x0 > 3 ? 1 : 0)), by = y + k * rowH, bh = Math.max(1, rowH - (rowH > 3 ? 1 : 0));
        const state = STATE[a[6]];
        let fill = col('done');
        if (state === 'running') { fill = col('running'); drawn.running++; }
        if (state === 'failed') { fill = a[9] ? '#ffffff' : col('failed'); drawn.failed++; }
        if (state === 'lost') { fill = col('lost'); drawn.lost++; }
        if (state === 'cancelled') { fill = col('cancelled'); drawn.cancelled++; }
        ctx.fillStyle = fill;
        ctx.fillRect(x0, by, w, bh);
        if (state === 'failed' && a[9]) {
          drawn.notStarted++;
          ctx.strokeStyle = col('failed');
          ctx.lineWidth = 1;
          ctx.strokeRect(x0 + 0.5, by + 0.5, Math.max(1, w - 1), Math.max(1, bh - 1));
        }
        if (a[8]) { // cold start
          drawn.cold++;
          ctx.fillStyle = col('cold');
          ctx.fillRect(x0, by, Math.min(4, w), bh);
        }
        if (a[3] > 1) { // a retry
          drawn.retries++;
          ctx.fillStyle = col('retry');
          ctx.fillRect(x0, by, w, Math.max(1, Math.min(3, bh / 3)));
        }
        if (S.highlight && S.highlight[0] === a[1] && S.highlight[1] === a[2]) {
          drawn.highlighted = [a[1], a[2]];
          ctx.strokeStyle = '#000';
          ctx.lineWidth = 2;
          ctx.strokeRect(x0 - 2, by - 2, w + 4, bh + 4);
        }
        drawn.bars++;
        drawn.rects.push([x0, by, w, bh, a[0]]);
      }
      y += sec.lanes * rowH + 4;
    }
    // Throttling: a mark on the time axis where the backend reported it.
    ctx.fillStyle = col('throttle');
    for (const th of j.throttles || []) {
      const x = X(th[0]);
      ctx.globalAlpha = 0.35;
      ctx.fillRect(x - 0.5, AXIS, 1, height - AXIS);
      ctx.globalAlpha = 1;
      ctx.beginPath();
      ctx.moveTo(x - 4, AXIS - 8);
      ctx.lineTo(x + 4, AXIS - 8);
      ctx.lineTo(x, AXIS - 1);
      ctx.fill();
      drawn.throttleMarks++;
    }
    S.drawn = drawn;
    $('tlnote').textContent = num(drawn.bars) + ' attempts in ' + num(lanesTotal) + ' lanes' +
      (drawn.cold ? ' · ' + num(drawn.cold) + ' cold starts' : '') + (drawn.retries ? ' · ' + num(drawn.retries) + ' retries' : '') +
      (drawn.failed ? ' · ' + num(drawn.failed) + ' failed attempts' : '') + (drawn.cancelled ? ' · ' + num(drawn.cancelled) + ' cancelled' : '') + (drawn.throttleMarks ? ' · throttling reported ' + drawn.throttleMarks + ' time(s)' : '') +
      ' · ' + S.instances.length + ' instance(s)';
  }

  function axis(ctx, X, span, width, height, AXIS) {
    ctx.font = '10px system-ui, sans-serif';
    ctx.fillStyle = '#6b7385';
    ctx.strokeStyle = '#e3e6ec';
    ctx.lineWidth = 1;
    const step = niceStep(span / 8);
    for (let t = 0; t <= span; t += step) {
      const x = Math.round(X(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, AXIS - 4);
      ctx.lineTo(x, height);
      ctx.stroke();
      ctx.fillText(dur(t), x + 2, 10);
    }
  }
  function niceStep(us) {
    const p = Math.pow(10, Math.floor(Math.log10(Math.max(us, 1))));
    for (const m of [1, 2, 5, 10]) if (m * p >= us) return m * p;
    return 10 * p;
  }

  // Hovering names the attempt under the pointer.
  function hover(ev) {
    const tip = $('tip');
    const d = S.drawn;
    if (!d) return;
    const r = $('timeline').getBoundingClientRect();
    const x = ev.clientX - r.left, y = ev.clientY - r.top;
    let hit = null;
    for (let i = d.rects.length - 1; i >= 0; i--) {
      const q = d.rects[i];
      if (x >= q[0] - 1 && x <= q[0] + q[2] + 1 && y >= q[1] && y <= q[1] + Math.max(q[3], 2)) { hit = q[4]; break; }
    }
    if (hit === null) { tip.hidden = true; return; }
    const a = S.attempts[hit];
    const end = a[5] < 0 ? now() : a[5];
    let t = 'stage ' + a[1] + ' task ' + a[2] + ' attempt ' + a[3] + '\n' + STATE[a[6]] + (a[9] ? ' (not started)' : '') +
      ', ' + dur(end - a[4]) + (a[5] < 0 ? ' so far' : '') + '\nstarted at ' + dur(a[4]);
    if (a[7] >= 0) t += '\ninstance ' + S.instances[a[7]] + (a[8] ? ' (cold start)' : ' (warm)');
    if (S.errors[hit]) t += '\n' + clip(S.errors[hit], 400);
    tip.textContent = t;
    tip.hidden = false;
    tip.style.left = Math.min(x + 12, r.width - 300) + 'px';
    tip.style.top = (y + 12) + 'px';
  }

  // ---- concurrency ----
  function renderConcurrency(j) {
    const cv = $('concurrency');
    const tnow = now();
    const steps = [];
    for (const a of S.attempts) {
      if (!a) continue;
      steps.push([a[4], 1], [a[5] < 0 ? tnow : a[5], -1]);
    }
    steps.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    const pts = [[0, 0]];
    let c = 0, peak = 0;
    for (const [t, d] of steps) { c += d; pts.push([t, c]); peak = Math.max(peak, c); }
    pts.push([tnow, c]);
    const width = cv.parentElement.clientWidth || 900, height = 220;
    const dpr = window.devicePixelRatio || 1;
    cv.width = width * dpr;
    cv.height = height * dpr;
    cv.style.height = height + 'px';
    const ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const L = 40, T = 18, B = 20, span = Math.max(tnow, 1000);
    const ymax = Math.max(peak, j.concurrency || 0, 1) * 1.1;
    const X = (t) => L + (width - L - 10) * t / span;
    const Y = (v) => height - B - (height - B - T) * v / ymax;
    axis(ctx, X, span, width, height - B + 4, T);
    ctx.fillStyle = '#6b7385';
    for (const v of [0, Math.round(ymax / 2), Math.floor(ymax)]) ctx.fillText(String(v), 4, Y(v) + 3);
    if (j.concurrency) {
      ctx.strokeStyle = '#d64541';
      ctx.setLineDash([5, 4]);
      ctx.beginPath();
      ctx.moveTo(L, Y(j.concurrency));
      ctx.lineTo(width - 10, Y(j.concurrency));
      ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.strokeStyle = '#3b7dd8';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let prev = 0;
    pts.forEach(([t, v], k) => {
      if (k === 0) ctx.moveTo(X(t), Y(v));
      else { ctx.lineTo(X(t), Y(prev)); ctx.lineTo(X(t), Y(v)); }
      prev = v;
    });
    ctx.stroke();
    ctx.fillStyle = '#1d2330';
    ctx.textAlign = 'right';
    ctx.fillText('peak ' + peak + ' in flight', width - 12, T + 10);
    ctx.textAlign = 'left';
    S.peak = peak;
  }

  // ---- start ----
  document.addEventListener('DOMContentLoaded', () => {
    $('main').hidden = true;
    $('follow').onclick = () => { S.pinned = null; connect(); };
    $('timeline').addEventListener('mousemove', hover);
    $('timeline').addEventListener('mouseleave', () => { $('tip').hidden = true; });
    window.addEventListener('resize', schedule);
    // Running bars grow between messages.
    setInterval(() => { if (S.job && !S.job.end) schedule(); }, 500);
    const q = new URLSearchParams(location.search).get('job');
    if (q) S.pinned = q;
    connect();
  });

  // For tests and the curious: what the page shows, as numbers.
  window.galeUI = {
    stats() {
      const d = S.drawn || {};
      return {
        job: S.job ? S.job.id : null, status: S.job ? S.job.status : null, updates: S.updates,
        jobs: S.jobs.map((j) => [j.id, j.status]), bars: d.bars || 0, lanes: d.lanes || 0, cold: d.cold || 0,
        retries: d.retries || 0, failed: d.failed || 0, notStarted: d.notStarted || 0, lost: d.lost || 0,
        cancelled: d.cancelled || 0,
        running: d.running || 0, throttleMarks: d.throttleMarks || 0, highlighted: d.highlighted || null,
        peak: S.peak || 0, instances: S.instances.length, domNodes: document.getElementsByTagName('*').length,
      };
    },
  };
})();
