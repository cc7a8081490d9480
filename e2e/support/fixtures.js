// The fixtures every browser test uses: a Hookplane of its own, a signed-in page, and a check that no page
// logged a console error or threw an uncaught exception.

import { test as base, expect } from '@playwright/test';
import { attachLog, startDemo, startWithOperator } from './hookplane.js';

export { expect };

// Chromium logs every response of 400 or more, a page's own or a script's fetch, as a console error. Some
// flows ask for such an answer on purpose (a refused sign-in is a 401, a replay limit a 429); a test names the
// statuses it provokes with `consoleErrors.allowStatus(…)`, and only that message, for a URL that really
// answered that status, is let through.
const FAILED_LOAD = /^Failed to load resource: the server responded with a status of (\d{3})\b/;

export const test = base.extend({
  /** The demo scenario `hookplane` starts; change it with `test.use({ scenario: 'rate-limited' })`. */
  scenario: ['base', { option: true }],

  /** `hookplane serve --demo <scenario>`, started for this test alone and stopped after it. */
  hookplane: async ({ scenario }, use, testInfo) => {
    const server = await startDemo(scenario);
    try {
      await use(server);
    } finally {
      await server.stop();
      await attachLog(server, testInfo);
    }
  },

  /** A Hookplane on its own data directory with one admin (`username`, `password`), and no setup link. */
  operatorServer: async ({}, use, testInfo) => {
    const server = await startWithOperator();
    try {
      await use(server);
    } finally {
      await server.stop();
      await attachLog(server, testInfo);
    }
  },

  /**
   * The demo's dashboard as the browser that opened the setup link sees it. That browser is an operator
   * (it replays, pauses and resumes) and never an admin.
   */
  dashboard: async ({ page, hookplane }, use) => {
    await page.goto(hookplane.setupUrl);
    await expect(page).toHaveURL(/\/dashboard\/webhooks$/);
    await use(page);
  },

  /**
   * The demo's dashboard as an admin: the demo has no operator accounts, so the page sends the demo's admin
   * API token as a bearer token, which the dashboard accepts for automation. Such a caller has no session, so
   * its forms carry no CSRF token and it has no Sign out button.
   */
  adminDashboard: async ({ page, hookplane }, use) => {
    expect(hookplane.apiToken, 'the demo printed its API token').toBeTruthy();
    await page.setExtraHTTPHeaders({ Authorization: `Bearer ${hookplane.apiToken}` });
    await page.goto(`${hookplane.url}/dashboard/webhooks`);
    await expect(page.getByRole('link', { name: 'Audit log' })).toBeVisible();
    await use(page);
  },

  // Automatic: every test fails if its page logged a console error or threw.
  consoleErrors: [
    async ({ page }, use) => {
      const logged = [];
      const thrown = [];
      const allowed = new Set();
      const answered = new Map();
      page.on('response', (resp) => {
        if (resp.status() < 400) return;
        if (!answered.has(resp.url())) answered.set(resp.url(), new Set());
        answered.get(resp.url()).add(resp.status());
      });
      page.on('console', (msg) => {
        if (msg.type() === 'error') logged.push({ text: msg.text(), where: msg.location()?.url || page.url() });
      });
      page.on('pageerror', (err) => thrown.push(`uncaught exception on ${page.url()}: ${err.stack || err.message}`));
      await use({
        /** Lets Chromium's "Failed to load resource" message through for answers with these statuses. */
        allowStatus: (...statuses) => statuses.forEach((s) => allowed.add(s)),
      });
      // Judged at the end: a response event may arrive after the console message it caused.
      const errors = logged
        .filter(({ text, where }) => {
          const status = Number(text.match(FAILED_LOAD)?.[1]);
          return !(status && allowed.has(status) && answered.get(where)?.has(status));
        })
        .map(({ text, where }) => `console error on ${where}: ${text}`);
      expect([...errors, ...thrown], 'no page may log a console error or throw').toEqual([]);
    },
    { auto: true },
  ],
});
