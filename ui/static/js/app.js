// The UI's entry point: sign-in, navigation between views, sign-out.

import * as api from './api.js';
import {h, clear} from './dom.js';
import {current} from './router.js';
import * as explore from './explore.js';
import * as events from './events.js';
import * as rollouts from './rollouts.js';
import * as alerts from './alerts.js';

const VIEWS = {explore, events, rollouts, alerts};
const TITLES = {explore: 'Explore', events: 'Events', rollouts: 'Rollouts', alerts: 'Alerts'};

const main = document.getElementById('view');
const nav = document.querySelector('.nav');
const sessionBox = document.querySelector('.session');
let unmount = null;
let notice = '';

function route() {
  if (unmount) {
    unmount();
    unmount = null;
  }
  clear(main);
  const sess = api.session();
  nav.hidden = !sess;
  sessionBox.hidden = !sess;
  if (!sess) {
    signInView();
    return;
  }
  document.querySelector('.session-org').textContent = 'organization ' + sess.org;
  let {view, params} = current();
  if (!VIEWS[view]) view = 'explore';
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.view === view);
  document.title = TITLES[view] + ' · Tidemark';
  main.dataset.view = view;
  unmount = VIEWS[view].mount(main, params) || null;
}

function signInView() {
  document.title = 'Sign in · Tidemark';
  main.dataset.view = 'signin';
  const token = h('input', {type: 'password', id: 'signin-token', required: true, autocomplete: 'off', spellcheck: 'false', 'data-testid': 'signin-token'});
  const org = h('input', {type: 'text', id: 'signin-org', required: true, value: 'default', pattern: '[a-z0-9][a-z0-9\\-]*', spellcheck: 'false', 'data-testid': 'signin-org'});
  const error = h('p', {class: 'signin-error', role: 'alert', 'data-testid': 'signin-error', hidden: !notice}, notice);
  notice = '';
  const submit = h('button', {type: 'submit', class: 'primary', 'data-testid': 'signin-submit'}, 'Sign in');
  const form = h('form', {class: 'signin', 'data-testid': 'signin-form', onsubmit: async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      api.saveSession(await api.signIn(token.value.trim(), org.value.trim()));
      route();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  }},
  h('h1', null, 'Sign in to Tidemark'),
  h('p', {class: 'muted'}, 'Use a token of scope read (or write, or admin). It is kept in this tab only.'),
  h('label', {for: 'signin-token'}, 'Token'), token,
  h('label', {for: 'signin-org'}, 'Organization'), org,
  h('p', {class: 'hint muted'}, 'The slug of the token\'s organization; a first start creates "default".'),
  error, submit);
  main.append(form);
  token.focus();
}

api.onUnauthorized((msg) => {
  api.clearSession();
  notice = 'Signed out: ' + msg;
  route();
});

sessionBox.querySelector('button').addEventListener('click', () => {
  api.clearSession();
  route();
});

// Every view change mounts the view again; a view records its own state
// with history.replaceState, which does not come here.
window.addEventListener('hashchange', route);
route();
