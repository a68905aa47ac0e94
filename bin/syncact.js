#!/usr/bin/env node
// The `syncact` command. The sources are TypeScript run through tsx, so a fresh
// `npm install` is the only set-up (no build step that could go stale).
import { register } from 'tsx/esm/api';

register();
await import('../server/cli.ts');
