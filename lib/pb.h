/*
 * pb.h - strict protobuf decoding shared by every parser.
 *
 * Every protobuf structure ruf accepts (certificates, directories, envelope
 * heads, reports, frames) must be in canonical form: fields in field-number
 * order, each at most once, no default values written out, no unknown fields,
 * strings valid UTF-8 without NUL. A strict decoder rejects anything else,
 * so there is exactly one byte string for each value: signatures over "the
 * exact received bytes" then mean the same thing to every implementation, and
 * duplicate or trailing data cannot hide in a message.
 */
#ifndef RUF_PB_H
#define RUF_PB_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * Decodes len bytes as message type desc. Returns 0 and a message the caller
 * frees with protobuf_c_message_free_unpacked(*out, NULL), or RUF_E_FORMAT if
 * the bytes do not parse or are not canonical (see above), RUF_E_TOO_LARGE if
 * len exceeds max.
 */
int ruf_pb_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                  size_t max, ProtobufCMessage **out) __attribute__((warn_unused_result));

/*
 * As ruf_pb_decode, for messages holding secrets: every block protobuf-c
 * allocates is wiped when freed. Free the result with ruf_pb_free_secret().
 */
int ruf_pb_decode_secret(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                         size_t max, ProtobufCMessage **out) __attribute__((warn_unused_result));
void ruf_pb_free_secret(ProtobufCMessage *msg);

/*
 * Encodes msg into a new malloc'ed buffer the caller owns. Returns 0 or
 * RUF_E_NOMEM.
 */
int ruf_pb_encode(const ProtobufCMessage *msg, uint8_t **out, size_t *len);

/* True if the len bytes at s are valid UTF-8 and hold no NUL. */
int ruf_utf8_valid(const char *s, size_t len);

#endif
