// Hookplane's dashboard works without this script. It adds copy-to-clipboard, keeps the first page of the
// list live by fetching the same URL and swapping the regions marked `data-live`, sends replays in place
// (the button is disabled while the request runs, then a toast or a banner says how it went), shows a busy
// button on every other form, opens payloads in a modal over the list, and keeps relative times current.
'use strict';

(() => {
  const LIVE_EVERY_MS = 10000;
  const TOAST_MS = 8000;

  function toast(title, text) {
    const box = document.getElementById('toasts');
    if (!box) return;
    const el = document.createElement('div');
    el.className = 'toast';
    el.setAttribute('role', 'status');
    const head = document.createElement('p');
    head.className = 'toast-title';
    head.textContent = title;
    el.append(head);
    if (text) {
      const body = document.createElement('p');
      body.textContent = text;
      el.append(body);
    }
    box.append(el);
    setTimeout(() => el.remove(), TOAST_MS);
  }

  // The server's own toasts (post/redirect/get) fade like the script's.
  for (const el of document.querySelectorAll('[data-toast]')) setTimeout(() => el.remove(), TOAST_MS);

  async function copyText(button) {
    const { copy, copyTarget, copyUrl } = button.dataset;
    if (copyUrl) {
      const resp = await fetch(copyUrl, { credentials: 'same-origin' });
      if (!resp.ok) throw new Error('the body could not be read (' + resp.status + ')');
      return resp.text();
    }
    if (copyTarget) {
      const target = document.getElementById(copyTarget);
      return target ? target.textContent : '';
    }
    return copy;
  }

  function wireCopy(root) {
    for (const button of root.querySelectorAll('button[data-copy], button[data-copy-target], button[data-copy-url]')) {
      if (!navigator.clipboard || button.dataset.wired) continue;
      button.dataset.wired = 'true';
      button.hidden = false;
      button.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(await copyText(button));
          toast('Copied');
        } catch (e) {
          toast('Not copied', 'The browser refused the clipboard, or the text could not be read.');
        }
      });
    }
  }

  function banner(tone, title, text) {
    const notices = document.getElementById('notices');
    if (!notices) return;
    const el = document.createElement('div');
    el.className = 'banner banner-' + tone;
    el.setAttribute('role', tone === 'critical' ? 'alert' : 'status');
    const head = document.createElement('p');
    head.className = 'banner-title';
    head.textContent = title;
    const body = document.createElement('p');
    body.textContent = text;
    el.append(head, body);
    notices.replaceChildren(el);
  }

  function badge(tone, label, note) {
    const b = document.createElement('span');
    b.className = 'badge badge-' + tone;
    b.textContent = label;
    const n = document.createElement('span');
    n.className = 'subdued';
    n.textContent = note;
    return [b, ' ', n];
  }

  // The subscriptions whose demo destination answers 200: in the demo a replay to them is shown delivered at
  // once, and the next refresh brings the real outcome.
  function demoHealthy(subscription) {
    const demo = document.querySelector('[data-demo-healthy]');
    return !!demo && demo.dataset.demoHealthy.split(' ').includes(subscription);
  }

  // The row of a replayed delivery shows it as pending (or, in the demo, delivered) at once.
  function markReplayed(id) {
    const row = document.querySelector('tr[data-delivery="' + CSS.escape(id) + '"]');
    const cell = row && row.querySelector('td.status');
    if (!cell) return;
    if (demoHealthy(row.dataset.subscription)) {
      cell.replaceChildren(...badge('success', 'Success', 'replayed'));
    } else {
      cell.replaceChildren(...badge('neutral', 'Pending', 'replay queued'));
    }
  }

  function busy(button, on) {
    if (on) button.setAttribute('aria-busy', 'true');
    else button.removeAttribute('aria-busy');
  }

  async function replay(form, button) {
    button.disabled = true;
    busy(button, true);
    let keepDisabled = false;
    try {
      const resp = await fetch(form.action, {
        method: 'POST',
        body: new URLSearchParams(new FormData(form)),
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
      });
      const answer = await resp.json().catch(() => ({}));
      if (resp.status === 202) {
        toast('Replay queued', 'A new attempt of ' + answer.delivery_id + ' is on its way.');
        markReplayed(answer.delivery_id);
        // One replay per delivery per 5 minutes: the button would only be refused.
        keepDisabled = form.querySelector('input[name=delivery]') !== null;
      } else if (resp.status === 429) {
        banner('warning', 'Replay limit reached', answer.detail || 'Try again later.');
      } else {
        banner('critical', 'Not replayed', answer.detail || 'The replay failed (' + resp.status + ').');
      }
    } catch (e) {
      banner('critical', 'Not replayed', 'Hookplane could not be reached; nothing was replayed.');
    } finally {
      busy(button, false);
      button.disabled = keepDisabled;
    }
  }

  function wireForms(root) {
    for (const form of root.querySelectorAll('form[method=post]')) {
      if (form.dataset.wired) continue;
      form.dataset.wired = 'true';
      form.addEventListener('submit', (event) => {
        const button = event.submitter || form.querySelector('button[type=submit]');
        if (!button) return;
        if (form.hasAttribute('data-replay')) {
          event.preventDefault();
          if (!button.disabled) replay(form, button);
        } else if (button.getAttribute('aria-busy') === 'true') {
          // Already on its way: a second press would post the form twice.
          event.preventDefault();
        } else {
          // A plain post: the page is replaced by the answer; the button shows it is on its way. It is
          // disabled after this turn, so that the browser still sends it with the form.
          busy(button, true);
          setTimeout(() => { button.disabled = true; }, 0);
        }
      });
    }
  }

  // Back from the cache (the browser's back button), a page must not keep the buttons it left busy.
  window.addEventListener('pageshow', (event) => {
    if (!event.persisted) return;
    for (const b of document.querySelectorAll('button[aria-busy="true"]')) {
      busy(b, false);
      b.disabled = false;
    }
  });

  // The payload modal: the delivery page's payload card, over the list, so the operator keeps their place.
  let modal = null;
  function payloadModal() {
    if (modal) return modal;
    modal = document.createElement('dialog');
    modal.className = 'modal';
    modal.id = 'payload-modal';
    modal.setAttribute('aria-labelledby', 'payload-modal-title');
    const header = document.createElement('div');
    header.className = 'modal-header';
    const title = document.createElement('h2');
    title.id = 'payload-modal-title';
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'button button-plain';
    close.textContent = 'Close';
    close.addEventListener('click', () => modal.close());
    const link = document.createElement('a');
    link.className = 'button button-plain';
    link.textContent = 'Open its page';
    const tools = document.createElement('div');
    tools.className = 'actions';
    tools.append(link, close);
    header.append(title, tools);
    const body = document.createElement('div');
    body.className = 'modal-body';
    modal.append(header, body);
    document.body.append(modal);
    return modal;
  }

  async function openPayload(link) {
    const dialog = payloadModal();
    const [title, tools] = dialog.querySelector('.modal-header').children;
    const body = dialog.querySelector('.modal-body');
    const row = link.closest('tr');
    const menu = link.closest('details');
    // Focus goes back where the operator was: the row's menu button (the menu itself closes).
    const back = menu ? menu.querySelector('summary') : link;
    if (menu) menu.open = false;
    title.textContent = 'Payload of ' + (row ? row.querySelector('td:nth-child(2)').textContent : 'the delivery');
    tools.querySelector('a').href = link.href;
    body.replaceChildren(document.createTextNode('Loading…'));
    dialog.onclose = () => back.focus();
    dialog.showModal();
    try {
      const resp = await fetch(link.href, { headers: { Accept: 'text/html' }, credentials: 'same-origin' });
      const page = new DOMParser().parseFromString(await resp.text(), 'text/html');
      const card = page.querySelector('section.payload');
      if (!resp.ok || !card) throw new Error(String(resp.status));
      // The card's heading is the dialog's own title.
      card.querySelector('#payload-title')?.remove();
      card.removeAttribute('aria-labelledby');
      body.replaceChildren(document.adoptNode(card));
      wireCopy(body);
    } catch (e) {
      const p = document.createElement('p');
      p.textContent = 'The payload could not be loaded; open its page instead.';
      body.replaceChildren(p);
    }
  }

  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a[data-payload]');
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || !window.HTMLDialogElement) return;
    event.preventDefault();
    openPayload(link);
  });

  // "5 min ago", as the server words it (`format::ago`), kept current between refreshes.
  function ago(ms) {
    const s = Math.floor(ms / 1000);
    if (ms < 10000) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    if (s < 2 * 86400) return '1 day ago';
    return Math.floor(s / 86400) + ' days ago';
  }

  function tickTimes() {
    const now = Date.now();
    for (const t of document.querySelectorAll('time[data-ago]')) {
      const at = Date.parse(t.getAttribute('datetime'));
      if (!Number.isNaN(at)) t.textContent = ago(now - at);
    }
  }

  function busyLive() {
    // Never replace what the operator is using: an open menu, a focused field, a selection.
    const open = document.querySelector('[data-live] details[open]');
    const focused = document.activeElement && document.activeElement.closest('[data-live]');
    const selecting = String(window.getSelection ? window.getSelection() : '').length > 0;
    return open || focused || selecting;
  }

  // Each region's markup as the server sent it: the page's own copy changes once buttons are wired.
  const served = new Map();
  function remember(root) {
    for (const region of root.querySelectorAll('[data-live][id]')) served.set(region.id, region.innerHTML);
  }

  async function refresh() {
    if (document.hidden || busyLive()) return;
    try {
      const resp = await fetch(location.href, { headers: { Accept: 'text/html' }, credentials: 'same-origin' });
      if (!resp.ok) return;
      const next = new DOMParser().parseFromString(await resp.text(), 'text/html');
      for (const region of document.querySelectorAll('[data-live][id]')) {
        const fresh = next.getElementById(region.id);
        if (fresh && fresh.innerHTML !== served.get(region.id)) {
          served.set(region.id, fresh.innerHTML);
          const adopted = document.adoptNode(fresh);
          region.replaceWith(adopted);
          wireCopy(adopted);
          wireForms(adopted);
        }
      }
      tickTimes();
    } catch (e) {
      // Offline or restarting: the next tick tries again.
    }
  }

  remember(document);
  wireCopy(document);
  wireForms(document);
  setInterval(tickTimes, 30000);
  // Only the newest page changes as deliveries arrive; older pages stay put.
  if (document.querySelector('[data-live]') && !new URLSearchParams(location.search).has('cursor')) {
    setInterval(refresh, LIVE_EVERY_MS);
  }
})();
