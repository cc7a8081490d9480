// Hookplane's dashboard works without this script. It adds copy-to-clipboard and keeps the first page of
// the list live by fetching the same URL and swapping the regions marked `data-live`.
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
        }
      }
    } catch (e) {
      // Offline or restarting: the next tick tries again.
    }
  }

  remember(document);
  wireCopy(document);
  // Only the newest page changes as deliveries arrive; older pages stay put.
  if (document.querySelector('[data-live]') && !new URLSearchParams(location.search).has('cursor')) {
    setInterval(refresh, LIVE_EVERY_MS);
  }
})();
