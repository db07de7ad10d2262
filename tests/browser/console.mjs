// Drives the ops console in a real browser (Debian's chromium through playwright-core) the way
// an operator would, and checks what the person would see. Run by tests/console.rs, which
// starts the gateway, makes the payments and passes what it made as JSON in argv[2]:
// { admin, token, shots, paid: {out_trade_no, payment_id, provider}, failed_event, merchant,
//   accounts: [...], today }
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';

const input = JSON.parse(process.argv[2]);
const { admin, token, shots } = input;
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--no-zygote', '--disable-gpu'],
});
const failures = [];
try {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  // The console is self-contained: every request stays on the admin listener.
  const foreign = [];
  page.on('request', (r) => { if (!r.url().startsWith(admin)) foreign.push(r.url()); });
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  const text = (sel) => page.locator(sel).innerText();

  // Not logged in: the console sends the person to its login page.
  await page.goto(`${admin}/console`);
  assert.match(page.url(), /\/console\/login$/);
  await shot('01-login');
  await page.fill('input[name=name]', 'Wang Li');
  await page.fill('input[name=token]', 'not-the-token');
  await page.click('button[type=submit]');
  assert.match(await text('.error'), /not the one in routes\.yaml/);
  await page.fill('input[name=name]', 'Wang Li');
  await page.fill('input[name=token]', token);
  await page.click('button[type=submit]');

  // Overview: every account's payments of the day, the outbox, the chart.
  assert.equal(await text('h1'), 'Overview');
  assert.equal(await text('.operator'), 'Wang Li');
  for (const account of input.accounts) {
    const row = page.locator(`#by-account-day tr[data-account="${account}"]`);
    assert.equal(await row.count(), 1, `overview lists ${account}`);
    assert.ok(Number((await row.locator('td').nth(5).innerText()).trim()) >= 1, `${account} has payments`);
  }
  assert.ok((await page.locator('svg.chart rect').count()) >= 1, 'the hourly chart has bars');
  await shot('02-overview');

  // Payments: filter by account and status, then find one by its out_trade_no.
  await page.click('nav >> text=Payments');
  assert.ok((await page.locator('#payments tbody tr[data-payment]').count()) >= input.accounts.length);
  await page.selectOption('select[name=provider]', input.paid.provider);
  await page.selectOption('select[name=status]', 'succeeded');
  await page.click('form.filters button[type=submit]');
  const rows = page.locator('#payments tbody tr[data-payment]');
  assert.ok((await rows.count()) >= 1, 'the filter keeps the paid payment');
  for (const row of await rows.all()) {
    assert.equal(await row.locator('td').nth(6).innerText(), input.paid.provider);
    assert.equal(await row.locator('[data-status]').getAttribute('data-status'), 'succeeded');
  }
  await shot('03-payments-filtered');
  await page.goto(`${admin}/console/payments`);
  await page.fill('input[name=q]', input.paid.out_trade_no);
  await page.click('form.filters button[type=submit]');
  assert.equal(await rows.count(), 1);
  await page.click(`#payments a:text("${input.paid.payment_id}")`);

  // The payment's page: its timeline (provider call, callback, notification), refunds, door.
  assert.match(await text('#payment'), new RegExp(input.paid.out_trade_no));
  for (const kind of ['created', 'upstream', 'callback', 'notification']) {
    assert.ok((await page.locator(`#timeline tr[data-kind=${kind}]`).count()) >= 1, `timeline has ${kind}`);
  }
  assert.match(await text('#timeline'), /accepted/);
  assert.match(await text('#timeline'), /delivered/);
  assert.equal(await page.locator('#refunds tbody tr').count(), 1, 'the refund is listed');
  assert.match(await text('#door'), /merchant API/);
  await shot('04-payment');
  // The README's picture: the top of the payment page at a modest size.
  await page.setViewportSize({ width: 1000, height: 720 });
  await page.screenshot({ path: `${shots}/readme-console.png` });
  await page.setViewportSize({ width: 1360, height: 900 });

  // Notifications: the given-up one, sent again, then delivered.
  await page.click('nav >> text=Notifications');
  await page.selectOption('form.filters select[name=status]', 'failed');
  await page.click('form.filters button[type=submit]');
  const failed = page.locator(`#events tr[data-event="${input.failed_event}"]`);
  assert.equal(await failed.count(), 1, 'the given-up notification is listed as failed');
  assert.match(await failed.innerText(), /HTTP 500/);
  await shot('05-notifications-failed');
  await failed.locator('button:text("Send again")').click();
  assert.match(await text('#flash'), /1 notification/);
  let delivered = false;
  for (let i = 0; i < 50 && !delivered; i++) {
    await page.goto(`${admin}/console/notifications?status=delivered`);
    delivered = (await page.locator(`#events tr[data-event="${input.failed_event}"]`).count()) === 1;
    if (!delivered) await page.waitForTimeout(200);
  }
  assert.ok(delivered, 'the notification sent again was delivered');
  await shot('06-notifications-delivered');

  // Providers and routes.
  await page.click('nav >> text=Providers');
  for (const account of input.accounts) {
    assert.equal(await page.locator(`#accounts tr[data-account="${account}"]`).count(), 1);
  }
  assert.match(await text(`#accounts tr[data-account="${input.paid.provider}"]`), /closed/);
  assert.ok((await page.locator(`table.routes[data-merchant="${input.merchant}"] tbody tr`).count()) >= 1);
  await shot('07-providers');

  // Reconcile today's payments of the paid payment's account.
  await page.click('nav >> text=Reconcile');
  await page.selectOption('select[name=provider]', input.paid.provider);
  await page.fill('input[name=date]', input.today);
  await page.click('form.filters button[type=submit]');
  assert.match(await text('#summary'), /\d+ Payments, \d+ agree/);
  await shot('08-reconcile');

  // 中文: the switch, kept across pages.
  await page.click('a.lang');
  assert.equal(await text('h1'), '对账');
  await page.click('nav >> text=总览');
  assert.equal(await text('h1'), '总览');
  await shot('09-overview-zh');

  // Logging out ends the session.
  await page.click('button:text("退出")');
  assert.match(page.url(), /\/console\/login$/);
  await page.goto(`${admin}/console/payments`);
  assert.match(page.url(), /\/console\/login$/);

  assert.deepEqual(foreign, [], 'no request left the admin listener');
} catch (e) {
  failures.push(e.stack || String(e));
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log('console browser test passed');
