// The host's controls through the UI: a password joiners are asked for, a raised hand, removal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, joinWithMedia } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('the host sets a password, a joiner is asked for it, raises a hand and is removed', async () => {
  const host = await participant(browser);
  const guest = await participant(browser);
  try {
    await joinWithMedia(host.page, server.url, 'hosted', 'Hana', { audio: false });
    await host.page.getByRole('button', { name: 'Room settings' }).click();
    await host.page.locator('#host-panel').getByLabel('Room password').fill('open sesame');
    await host.page.getByRole('button', { name: 'Set password' }).click();
    await host.page.getByText('Joining needs the password.').waitFor();

    // Without the password: a clear message and a password field.
    await guest.page.goto(`${server.url}/r/hosted`);
    await guest.page.getByLabel('Your name').fill('Gus');
    await guest.page.getByRole('button', { name: 'Join', exact: true }).click();
    await guest.page.getByText('This room needs a password').waitFor();
    await guest.page.locator('#join-form').getByLabel('Room password').fill('wrong');
    await guest.page.getByRole('button', { name: 'Join', exact: true }).click();
    await guest.page.getByText('This room needs a password').waitFor();
    await guest.page.locator('#join-form').getByLabel('Room password').fill('open sesame');
    await guest.page.getByRole('button', { name: 'Join', exact: true }).click();
    await guest.page.getByRole('button', { name: 'Leave' }).waitFor();
    await host.page.locator('figure.tile', { hasText: 'Gus' }).waitFor();

    await guest.page.getByRole('button', { name: 'Raise hand' }).click();
    await host.page.locator('figure.tile', { hasText: 'Gus' }).locator('.badge', { hasText: 'Hand raised' }).waitFor();
    await guest.page.getByRole('button', { name: 'Lower hand' }).waitFor();

    // Only the host sees Remove buttons.
    assert.equal(await guest.page.getByRole('button', { name: /^Remove / }).count(), 0);
    await host.page.getByRole('button', { name: 'Remove Gus' }).click();
    await guest.page.getByText('The host removed you from this meeting.').waitFor();
    await host.page.locator('figure.tile', { hasText: 'Gus' }).waitFor({ state: 'detached' });
    assert.equal(await host.page.locator('figure.tile').count(), 1);
  } finally {
    await host.context.close();
    await guest.context.close();
  }
});
