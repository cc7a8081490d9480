// Signing in and out as an operator made with `hookplane admin create-user`, the pause after repeated wrong
// passwords, and the refusal of forms that do not carry their CSRF token.

import { test, expect } from '../support/fixtures.js';

async function signIn(page, username, password) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Submits a form of the page after taking its CSRF field out, as a forged or stale form would arrive. */
async function submitWithoutCsrf(page, form) {
  await form.evaluate((f) => {
    f.querySelector('input[name=csrf]').remove();
    f.requestSubmit();
  });
}

test('an operator signs in, sees the dashboard, and signs out', async ({ page, operatorServer: server }) => {
  await page.goto(`${server.url}/dashboard/webhooks`);
  await expect(page).toHaveURL(/\/login\?next=/);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  // An operator exists, so the page does not tell how to make the first one.
  await expect(page.getByText('No operator exists yet')).toHaveCount(0);

  await signIn(page, server.username, server.password);
  await expect(page).toHaveURL(/\/dashboard\/webhooks$/);
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  await expect(page.locator('.session-user')).toHaveText(server.username);
  await expect(page.getByRole('link', { name: 'Audit log' })).toBeVisible();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login\?signed_out=1$/);
  await expect(page.getByRole('status').filter({ hasText: 'Signed out' })).toBeVisible();
  await page.goto(`${server.url}/dashboard/webhooks`);
  await expect(page).toHaveURL(/\/login\?next=/);
});

test('five wrong passwords pause sign-in for the account', async ({ page, operatorServer: server, consoleErrors }) => {
  // A wrong password is answered 401 and a paused sign-in 429, each logged by Chromium for its page.
  consoleErrors.allowStatus(401, 429);
  await page.goto(`${server.url}/login`);
  for (let i = 1; i <= 5; i++) {
    await signIn(page, server.username, `wrong-${i}`);
    const refused = page.getByRole('alert').filter({ hasText: 'Not signed in' });
    await expect(refused, `wrong password ${i}`).toBeVisible();
    await expect(refused).toContainText('The username or password is not right.');
    // The username stays filled in, so the next try is only the password.
    await expect(page.getByLabel('Username')).toHaveValue(server.username);
  }

  // The sixth try is not checked at all, even with the right password.
  await signIn(page, server.username, server.password);
  const paused = page.getByRole('alert').filter({ hasText: 'Sign-in is paused' });
  await expect(paused).toBeVisible();
  await expect(paused).toContainText('Too many failed sign-ins for this account; try again in 15 minutes.');
  await expect(page.locator('.session-user')).toHaveCount(0);
  await page.goto(`${server.url}/dashboard/webhooks`);
  await expect(page).toHaveURL(/\/login\?next=/);
});

test('forms without their CSRF token are refused and change nothing', async ({ page, operatorServer: server, consoleErrors }) => {
  consoleErrors.allowStatus(403);
  await page.goto(`${server.url}/login`);

  await page.getByLabel('Username').fill(server.username);
  await page.getByLabel('Password').fill(server.password);
  await submitWithoutCsrf(page, page.locator('form[action="/login"]'));
  await expect(page.getByRole('status').filter({ hasText: 'Try again' })).toContainText('had expired or came from another site');
  await expect(page.locator('.session-user')).toHaveCount(0);

  await signIn(page, server.username, server.password);
  await expect(page.locator('.session-user')).toHaveText(server.username);

  // Signed in, a post without the token is stopped before it is acted on: the session survives it.
  await submitWithoutCsrf(page, page.locator('form[action="/logout"]'));
  await expect(page.getByRole('status').filter({ hasText: 'This form has expired' })).toContainText('Nothing was changed');
  await page.goto(`${server.url}/dashboard/webhooks`);
  await expect(page.locator('.session-user')).toHaveText(server.username);

  // The same from outside a page: the browser's cookies, no token.
  const resp = await page.request.post(`${server.url}/dashboard/tokens`, {
    form: { intent: 'create', name: 'forged', role: 'admin' },
    maxRedirects: 0,
  });
  expect(resp.status()).toBe(403);
  expect(await resp.text()).toContain('This form has expired');
  await page.goto(`${server.url}/dashboard/tokens`);
  await expect(page.getByRole('heading', { name: 'API tokens' })).toBeVisible();
  await expect(page.getByText('forged')).toHaveCount(0);
});
