// The CommonJS entry: `require('@coze/api')` is the CozeClient class itself (as the product
// document's sample requires), with every other export as its properties.
import { CozeClient } from './client.js';
import * as everything from './errors.js';

const exported = Object.assign(CozeClient, everything, { CozeClient, default: CozeClient });
export = exported;
