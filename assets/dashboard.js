// Hookplane's dashboard works without this script. It adds copy-to-clipboard, keeps the first page of the
// list live by fetching the same URL and swapping the regions marked `data-live`, and sends replays in
// place: the button is disabled while the request runs, then a toast or a banner says how it went.
'use strict';

(() => {
  const LIVE_EVERY_MS = 10000;

  function toast(text) {
    const el = document.createElement('div');
    el.className = 'toast';
    el.setAttribute('role', 'status');
    el.textContent = text;
    document.body.appendChild(el);
    setTimeout(() => el.remove(), 5000);
  }

  function wireCopy(root) {
    for (const button of root.querySelectorAll('button[data-copy], button[data-copy-target]')) {
      if (!navigator.clipboard) continue;
      button.hidden = false;
      button.addEventListener('click', async () => {
        const target = button.dataset.copyTarget && document.querySelector(button.dataset.copyTarget);
        const text = target ? target.textContent : button.dataset.copy;
        try {
          await navigator.clipboard.writeText(text);
          toast('Copied');
        } catch (e) {
          toast('Copying was refused by the browser');
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

  // The row of a replayed delivery shows it as pending at once; the next refresh brings the real status.
  function markQueued(id) {
    const cell = document.querySelector('tr[data-delivery="' + CSS.escape(id) + '"] td.status');
    if (!cell) return;
    const badge = document.createElement('span');
    badge.className = 'badge badge-neutral';
    badge.textContent = 'Pending';
    const note = document.createElement('span');
    note.className = 'subdued';
    note.textContent = 'replay queued';
    cell.replaceChildren(badge, ' ', note);
  }

  async function replay(form, button) {
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
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
        toast('Replay queued for ' + answer.delivery_id);
        markQueued(answer.delivery_id);
        // One replay per delivery per 5 minutes: the button would only be refused.
        keepDisabled = true;
      } else if (resp.status === 429) {
        banner('warning', 'Replay limit reached', answer.detail || 'Try again later.');
      } else {
        banner('critical', 'Not replayed', answer.detail || 'The replay failed (' + resp.status + ').');
      }
    } catch (e) {
      banner('critical', 'Not replayed', 'Hookplane could not be reached; nothing was replayed.');
    } finally {
      button.removeAttribute('aria-busy');
      button.disabled = keepDisabled;
    }
  }

  function wireForms(root) {
    for (const form of root.querySelectorAll('form.action-form')) {
      if (form.dataset.wired) continue;
      form.dataset.wired = 'true';
      form.addEventListener('submit', (event) => {
        const button = form.querySelector('button[type=submit]');
        if (form.hasAttribute('data-replay')) {
          event.preventDefault();
          if (!button.disabled) replay(form, button);
        } else {
          // A plain post: the page is replaced by the answer; the button only shows it is on its way.
          button.setAttribute('aria-busy', 'true');
          setTimeout(() => { button.disabled = true; }, 0);
        }
      });
    }
  }

  function busy() {
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
    if (document.hidden || busy()) return;
    try {
      const resp = await fetch(location.href, { headers: { Accept: 'text/html' }, credentials: 'same-origin' });
      if (!resp.ok) return;
      const next = new DOMParser().parseFromString(await resp.text(), 'text/html');
      for (const region of document.querySelectorAll('[data-live][id]')) {
        const fresh = next.getElementById(region.id);
        if (fresh && fresh.innerHTML !== served.get(region.id)) {
          served.set(region.id, fresh.innerHTML);
          region.replaceWith(fresh);
          wireCopy(fresh);
          wireForms(fresh);
        }
      }
    } catch (e) {
      // Offline or restarting: the next tick tries again.
    }
  }

  remember(document);
  wireCopy(document);
  wireForms(document);
  // Only the newest page changes as deliveries arrive; older pages stay put.
  if (document.querySelector('[data-live]') && !new URLSearchParams(location.search).has('cursor')) {
    setInterval(refresh, LIVE_EVERY_MS);
  }
})();
