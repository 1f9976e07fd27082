// Bootstraps GraphiQL for session-manager.
//
// Served as /graphiql/init.js (not inline) so the page's Content-Security-Policy
// needs no 'unsafe-inline' for scripts. Expects the React, ReactDOM and GraphiQL
// UMD bundles to be loaded before it (they define window.React, window.ReactDOM
// and window.GraphiQL).
(function () {
  'use strict';

  var container = document.getElementById('graphiql');
  if (!window.React || !window.ReactDOM || !window.GraphiQL) {
    container.textContent = 'GraphiQL failed to load: its scripts are missing.';
    return;
  }

  // HTTP (queries, mutations, introspection) and WebSocket (subscriptions,
  // graphql-transport-ws protocol) endpoints on the page's own origin.
  var httpUrl = window.location.origin + '/graphql';
  var wsUrl =
    (window.location.protocol === 'https:' ? 'wss://' : 'ws://') +
    window.location.host +
    '/graphql/ws';

  // graphiql 3.8.3 bundles @graphiql/toolkit and graphql-ws. With
  // `subscriptionUrl` the toolkit opens a graphql-ws client for each
  // subscription whose connectionParams (the connection_init payload) are
  // `{ ...wsConnectionParams, ...<headers editor JSON> }`, so typing
  //   { "Authorization": "Bearer <token>" }
  // in the Headers editor sends that header on HTTP requests and the same
  // object as the connection_init payload on the WebSocket.
  var fetcher = GraphiQL.createFetcher({
    url: httpUrl,
    subscriptionUrl: wsUrl,
  });

  var defaultQuery = [
    '# Welcome to session-manager.',
    '# 1. Seed the demo data once: cargo run -- seed-demo',
    '# 2. Run the Login operation below and copy the token.',
    '# 3. In the Headers tab: {"Authorization": "Bearer <token>"}',
    '# 4. Run Sessions (or subscribe to SessionChanges and end a session in another tab).',
    '',
    'mutation Login {',
    '  login(email: "guardian@demo.example", password: "demo-guardian-pass") { token expiresAt role }',
    '}',
    '',
    'query Sessions {',
    '  sessions(first: 10) {',
    '    totalCount',
    '    edges {',
    '      node {',
    '        id name status endTime',
    '        user { email }',
    '        config { label notifyOnUnlock lockProfile { lockedApps whitelist } }',
    '        modules { name orderIndex videos { fileName mimeType } }',
    '      }',
    '    }',
    '  }',
    '}',
    '',
    'subscription SessionChanges {',
    '  sessionStatusChanged { change sessionId status session { name } }',
    '}',
    '',
  ].join('\n');

  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      // Open the Headers tab so the place for `Authorization: Bearer …` is visible.
      defaultEditorToolsVisibility: 'headers',
      // Keep tokens out of localStorage unless the user opts in from Settings.
      shouldPersistHeaders: false,
    })
  );
})();
