// The description of the webapi: its methods with examples, and from them the OpenAPI 3.1
// document served at /webapi/v0/openapi.json and kept as docs/webapi-openapi.json (a test checks
// that the two agree). The example forms of the method pages and "postern webapi" use the examples.
import { outgoingEvents } from '../config/domains.js';

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties: Record<string, Schema>, required: string[] = [], description?: string): Schema => ({
  type: 'object',
  ...(description && { description }),
  properties,
  ...(required.length && { required }),
  additionalProperties: false,
});
const s = (description: string, extra: Schema = {}): Schema => ({ type: 'string', description, ...extra });
const int = (description: string): Schema => ({ type: 'integer', format: 'int64', description });
const b = (description: string): Schema => ({ type: 'boolean', description });
const arr = (items: Schema, description?: string): Schema => ({ type: 'array', items, ...(description && { description }) });
const nullable = (x: Schema): Schema => ({ ...x, type: [x.type as string, 'null'] });

const schemas: Record<string, Schema> = {
  Error: obj({ Code: s('For programs: user (a problem with the request), server, badAddress, notFound, malformedMessageID, recipientSuppressed, recipientLimitReached, protocol (malformed HTTP request), unauthorized.'), Message: s('For people.') }, ['Code', 'Message']),
  NameAddress: obj({ Name: s('Display name, optional.'), Address: s('Email address.') }, ['Address']),
  File: obj(
    {
      Name: s('File name, optional.'),
      ContentType: s('Media type, e.g. application/pdf; from the name when empty.'),
      ContentID: s('For inline files: the id HTML refers to with "cid:", e.g. <logo>.'),
      Data: s('Contents, base64.', { contentEncoding: 'base64' }),
    },
    ['Data'],
  ),
  SendRequest: obj(
    {
      From: arr(ref('NameAddress'), 'At most one address of the account; by default the login address with the full name of the account.'),
      To: arr(ref('NameAddress')),
      CC: arr(ref('NameAddress')),
      BCC: arr(ref('NameAddress'), 'Recipients not named in the message.'),
      ReplyTo: arr(ref('NameAddress')),
      MessageID: s('Message-ID with angle brackets; generated when empty.'),
      References: arr(s('Message-ID.'), 'Message-IDs of the thread, oldest first; the last becomes In-Reply-To.'),
      Date: nullable(s('Date header, ISO 8601; now when absent.', { format: 'date-time' })),
      Subject: s('Subject.'),
      Text: s('Plain text body, lines separated by \\n.'),
      HTML: s('HTML body. With Text, the message offers both as alternatives.'),
      Extra: { type: 'object', additionalProperties: { type: 'string' }, description: 'Metadata kept with the queued message and sent back in webhooks about it.' },
      Headers: arr({ type: 'array', items: { type: 'string' }, minItems: 2, maxItems: 2 }, 'Additional header fields as [name, value]; a User-Agent is added unless given.'),
      InlineFiles: arr(ref('File'), 'Files shown within the message, e.g. images referred to by the HTML (multipart/related).'),
      AttachedFiles: arr(ref('File'), 'Attachments (multipart/mixed).'),
      RequireTLS: nullable(b('true: deliver only over verified TLS on the whole path (REQUIRETLS, RFC 8689); false: deliver even if TLS policies of the recipient fail ("TLS-Required: No"); null: the usual policies.')),
      FutureRelease: nullable(s('First delivery attempt not before this time, at most 60 days ahead, ISO 8601.', { format: 'date-time' })),
      SaveSent: b('Keep a copy in the Sent mailbox.'),
    },
    [],
    'A message to compose and send. Files can also be uploaded with multipart/form-data in fields "inlinefile" and "attachedfile" (a Content-ID header of an upload is used).',
  ),
  Submission: obj({ Address: s('Recipient.'), QueueMsgID: int('Id of the queue message; webhooks about its delivery name it. Local recipients, delivered at once, have one too, already retired.'), FromID: s('Unique id in the MAIL FROM address, when used.') }, [
    'Address',
    'QueueMsgID',
    'FromID',
  ]),
  SendResult: obj({ MessageID: s('Message-ID of the message.'), Submissions: arr(ref('Submission'), 'One per recipient, in the order of To, CC and BCC.') }, ['MessageID', 'Submissions']),
  Suppression: obj({
    ID: int('Id.'),
    Created: s('When added.', { format: 'date-time' }),
    Account: s('Account.'),
    BaseAddress: s('Simplified address that is matched: lower case, localpart without dots and cut at "+" or "-".'),
    OriginalAddress: s('The address that was added.'),
    Manual: b('Added by hand rather than after a failure.'),
    Reason: s('Why.'),
  }),
  SuppressionListRequest: obj({}),
  SuppressionListResult: obj({ Suppressions: arr(ref('Suppression')) }, ['Suppressions']),
  SuppressionAddRequest: obj({ EmailAddress: s('Address.'), Manual: b('Added by hand.'), Reason: s('Why.') }, ['EmailAddress']),
  SuppressionRemoveRequest: obj({ EmailAddress: s('Address.') }, ['EmailAddress']),
  SuppressionPresentRequest: obj({ EmailAddress: s('Address.') }, ['EmailAddress']),
  SuppressionPresentResult: obj({ Present: b('Whether the address (or its base address) is on the list.') }, ['Present']),
  Empty: obj({}),
  MsgIDRequest: obj({ MsgID: int('Id of a message in the account, e.g. from an incoming webhook.') }, ['MsgID']),
  MessagePartGetRequest: obj({ MsgID: int('Message id.'), PartPath: arr({ type: 'integer' }, 'Indexes into the parts of multiparts, e.g. [0, 1]; [] for a message that is not multipart.') }, ['MsgID']),
  MessageFlagsRequest: obj({ MsgID: int('Message id.'), Flags: arr(s('Flag or keyword.'), 'System flags like \\Seen and \\Answered, $Junk, $NotJunk, or other keywords.') }, ['MsgID', 'Flags']),
  MessageMoveRequest: obj({ MsgID: int('Message id.'), DestMailboxName: s('Existing mailbox, e.g. Archive.') }, ['MsgID', 'DestMailboxName']),
  Structure: obj(
    {
      ContentType: s('Lower case, e.g. text/plain.'),
      ContentTypeParams: { type: 'object', additionalProperties: { type: 'string' }, description: 'Parameters, lower-case names.' },
      ContentID: s('With angle brackets, or empty.'),
      DecodedSize: int('Size after transfer decoding; 0 for multiparts.'),
      Parts: arr(ref('Structure'), 'Parts of a multipart.'),
    },
    ['ContentType', 'ContentTypeParams', 'ContentID', 'DecodedSize', 'Parts'],
  ),
  Message: obj(
    {
      From: arr(ref('NameAddress')),
      To: arr(ref('NameAddress')),
      CC: arr(ref('NameAddress')),
      BCC: arr(ref('NameAddress')),
      ReplyTo: arr(ref('NameAddress')),
      Subject: s('Subject, decoded.'),
      MessageID: s('Message-ID with angle brackets.'),
      InReplyTo: s('Message-ID this one answers.'),
      References: arr(s('Message-ID.')),
      Date: nullable(s('Date header.', { format: 'date-time' })),
      Text: s('First text/plain part that is not an attachment, \\n line endings, at most 1 MiB; MessagePartGet gives all of it.'),
      HTML: s('First text/html part, likewise.'),
    },
    [],
    'Header fields and text of a message.',
  ),
  MessageMeta: obj({
    Size: int('Size of the stored message.'),
    DSN: b('The message is a delivery status notification.'),
    Flags: arr(s('Flag.')),
    MailFrom: s('SMTP MAIL FROM.'),
    MailFromValidated: b('MAIL FROM passed SPF.'),
    MsgFrom: s('Address of the From header.'),
    MsgFromValidated: b('The From domain passed DMARC.'),
    DKIMVerifiedDomains: arr(s('Domain.')),
    RemoteIP: s('IP address it came from.'),
    MailboxName: s('Mailbox it is in.'),
  }),
  MessageGetResult: obj({ Message: ref('Message'), Structure: ref('Structure'), Meta: ref('MessageMeta') }, ['Message', 'Structure', 'Meta']),
  OutgoingWebhook: obj(
    {
      Version: { type: 'integer', const: 0 },
      Event: s('What happened.', { enum: [...outgoingEvents] }),
      DSN: b('Learned from a DSN that came back.'),
      Suppressing: b('The failure put the recipient on the suppression list.'),
      QueueMsgID: int('Queue message id, as in the Send result.'),
      FromID: s('Unique id of the MAIL FROM address, if used.'),
      MessageID: s('Message-ID of the message.'),
      Subject: s('Subject of the message.'),
      WebhookQueued: s('When the event happened.', { format: 'date-time' }),
      SMTPCode: { type: 'integer', description: 'SMTP reply code of the receiving server, e.g. 250 or 550; 0 if none.' },
      SMTPEnhancedCode: s('Enhanced status code, e.g. 5.1.1.'),
      Error: s('Error message, e.g. the reply of the receiving server.'),
      Extra: { type: 'object', additionalProperties: { type: 'string' }, description: 'Extra of the Send request.' },
    },
    [],
    'Posted to the account\'s OutgoingWebhook URL. Headers X-Postern-Webhook-ID and X-Postern-Webhook-Attempt (1 on the first attempt). Only the newest event of a message is posted when older ones are still waiting.',
  ),
  IncomingWebhook: {
    allOf: [
      ref('Message'),
      obj({
        Version: { type: 'integer', const: 0 },
        Structure: ref('Structure'),
        Meta: obj({
          MsgID: int('Message id for the webapi.'),
          MailFrom: s('SMTP MAIL FROM.'),
          MailFromValidated: b('MAIL FROM passed SPF.'),
          MsgFromValidated: b('The From domain passed DMARC.'),
          RcptTo: s('SMTP RCPT TO.'),
          DKIMVerifiedDomains: arr(s('Domain.')),
          RemoteIP: s('IP address it came from.'),
          Received: s('When received.', { format: 'date-time' }),
          MailboxName: s('Mailbox it was delivered to.'),
          Automated: b('Automatic mail (auto-submitted, lists, bulk) that should not get automatic replies.'),
        }),
      }),
    ],
    description: 'Posted to the account\'s IncomingWebhook URL for each message delivered to it.',
  },
};

export interface MethodDoc {
  name: string;
  summary: string;
  request: string;
  /** Schema name of the result, or the media type of raw bytes. */
  result: string;
  raw?: boolean;
  example: Record<string, unknown>;
  resultExample?: unknown;
}

export const methodDocs: MethodDoc[] = [
  {
    name: 'Send',
    summary: 'Composes and sends a message: to the queue for remote recipients, into mailboxes for local ones. Recipients on the suppression list are refused (recipientSuppressed).',
    request: 'SendRequest',
    result: 'SendResult',
    example: {
      To: [{ Name: 'Bob', Address: 'bob@example.org' }],
      Subject: 'Your order',
      Text: 'Hello Bob,\n\nyour order has shipped.\n',
      HTML: '<p>Hello Bob,</p><p>your order has <b>shipped</b>.</p>',
      Extra: { orderid: '12345' },
      AttachedFiles: [{ Name: 'invoice.txt', ContentType: 'text/plain', Data: 'SW52b2ljZSAxMjM0NQo=' }],
    },
    resultExample: { MessageID: '<qx3vd81jmbrg0a6fke2p@example.com>', Submissions: [{ Address: 'bob@example.org', QueueMsgID: 101, FromID: '' }] },
  },
  { name: 'SuppressionList', summary: 'The suppression list of the account.', request: 'SuppressionListRequest', result: 'SuppressionListResult', example: {} },
  {
    name: 'SuppressionAdd',
    summary: 'Adds an address to the suppression list.',
    request: 'SuppressionAddRequest',
    result: 'Empty',
    example: { EmailAddress: 'bob@example.org', Manual: true, Reason: 'asked not to be mailed' },
    resultExample: {},
  },
  { name: 'SuppressionRemove', summary: 'Removes an address from the suppression list.', request: 'SuppressionRemoveRequest', result: 'Empty', example: { EmailAddress: 'bob@example.org' }, resultExample: {} },
  {
    name: 'SuppressionPresent',
    summary: 'Whether an address is on the suppression list.',
    request: 'SuppressionPresentRequest',
    result: 'SuppressionPresentResult',
    example: { EmailAddress: 'bob@example.org' },
    resultExample: { Present: false },
  },
  { name: 'MessageGet', summary: 'A stored message: header fields, text, MIME structure and delivery details.', request: 'MsgIDRequest', result: 'MessageGetResult', example: { MsgID: 1 } },
  { name: 'MessageRawGet', summary: 'A stored message as it is, message/rfc822.', request: 'MsgIDRequest', result: 'message/rfc822', raw: true, example: { MsgID: 1 } },
  {
    name: 'MessagePartGet',
    summary: 'One part of a stored message, transfer encoding removed, with its content type.',
    request: 'MessagePartGetRequest',
    result: 'application/octet-stream',
    raw: true,
    example: { MsgID: 1, PartPath: [0] },
  },
  { name: 'MessageDelete', summary: 'Removes a stored message.', request: 'MsgIDRequest', result: 'Empty', example: { MsgID: 1 }, resultExample: {} },
  { name: 'MessageFlagsAdd', summary: 'Adds flags or keywords to a message.', request: 'MessageFlagsRequest', result: 'Empty', example: { MsgID: 1, Flags: ['\\Seen', 'processed'] }, resultExample: {} },
  { name: 'MessageFlagsRemove', summary: 'Removes flags or keywords from a message.', request: 'MessageFlagsRequest', result: 'Empty', example: { MsgID: 1, Flags: ['\\Seen'] }, resultExample: {} },
  { name: 'MessageMove', summary: 'Moves a message to another mailbox.', request: 'MessageMoveRequest', result: 'Empty', example: { MsgID: 1, DestMailboxName: 'Archive' }, resultExample: {} },
];

export function openapi(): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const m of methodDocs) {
    const form = { type: 'object', properties: { request: { type: 'string', description: `JSON of ${m.request}.` } }, required: ['request'] };
    const multipart =
      m.name === 'Send'
        ? {
            'multipart/form-data': {
              schema: {
                type: 'object',
                properties: { ...form.properties, inlinefile: arr({ type: 'string', format: 'binary' }), attachedfile: arr({ type: 'string', format: 'binary' }) },
                required: ['request'],
              },
            },
          }
        : {};
    paths[`/${m.name}`] = {
      post: {
        operationId: m.name,
        summary: m.summary,
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: ref(m.request), example: m.example },
            'application/x-www-form-urlencoded': { schema: form },
            ...multipart,
          },
        },
        responses: {
          '200': m.raw
            ? { description: 'The bytes.', content: { [m.result]: { schema: { type: 'string', format: 'binary' } } } }
            : { description: 'Result.', content: { 'application/json': { schema: ref(m.result), ...(m.resultExample !== undefined && { example: m.resultExample }) } } },
          '400': { description: 'Error.', content: { 'application/json': { schema: ref('Error') } } },
          '401': { description: 'Missing or wrong credentials.', content: { 'application/json': { schema: ref('Error') } } },
        },
      },
    };
  }
  const hook = (schema: string, description: string) => ({
    post: { summary: description, requestBody: { content: { 'application/json': { schema: ref(schema) } } }, responses: { '200': { description: 'Any 2xx status is success; others are retried.' } } },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Postern webapi',
      version: '0',
      description:
        'Send mail and handle stored messages over HTTP. Each method is a POST to <base>/<Method> with HTTP basic authentication (an email address of the account and its password) and a JSON request, as application/json or in form field "request". Errors are status 400 with {Code, Message}. See docs/webapi.md.',
    },
    servers: [{ url: '/webapi/v0' }],
    security: [{ basic: [] }],
    paths,
    webhooks: {
      outgoing: hook('OutgoingWebhook', 'Event about an outgoing message (account OutgoingWebhook).'),
      incoming: hook('IncomingWebhook', 'A delivered incoming message (account IncomingWebhook).'),
    },
    components: { schemas, securitySchemes: { basic: { type: 'http', scheme: 'basic' } } },
  };
}
