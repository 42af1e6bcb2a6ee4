/* pb.c - strict (canonical) protobuf decoding. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "pb.h"

int
ruf_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p;
		size_t n;
		unsigned cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if ((size_t)(end - p) <= n)
			return 0;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += n + 1;
	}
	return 1;
}

static int
check_string(const char *s)
{
	return s == NULL || ruf_utf8_valid(s, strlen(s));
}

/* Rejects unknown fields and invalid strings anywhere in the message tree. */
static int
check_tree(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (m->n_unknown_fields != 0)
		return 0;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			void *const *arr = *(void *const *const *)(base + f->offset);
			for (size_t j = 0; j < n; j++) {
				if (f->type == PROTOBUF_C_TYPE_MESSAGE ? !check_tree(arr[j])
				                                       : !check_string(arr[j]))
					return 0;
			}
		} else {
			const void *v = *(const void *const *)(base + f->offset);
			if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				if (v != NULL && !check_tree(v))
					return 0;
			} else if (!check_string(v)) {
				return 0;
			}
		}
	}
	return 1;
}

/*
 * An allocator that wipes every block it frees, for messages that hold
 * secrets (keystore bodies). Each block carries its size in front.
 */
static void *
secret_alloc(void *data, size_t size)
{
	max_align_t *p;

	(void)data;
	if (size > SIZE_MAX - sizeof(max_align_t) || (p = malloc(sizeof(*p) + size)) == NULL)
		return NULL;
	memcpy(p, &size, sizeof(size));
	return p + 1;
}

static void
secret_free(void *data, void *ptr)
{
	max_align_t *p;
	size_t size;

	(void)data;
	if (ptr == NULL)
		return;
	p = (max_align_t *)ptr - 1;
	memcpy(&size, p, sizeof(size));
	sodium_memzero(ptr, size);
	free(p);
}

static ProtobufCAllocator secret_allocator = {secret_alloc, secret_free, NULL};

static int
decode(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len, size_t max,
       ProtobufCAllocator *alloc, ProtobufCMessage **out)
{
	ProtobufCMessage *m;
	uint8_t *re = NULL;
	size_t relen;
	int rc = RUF_E_FORMAT;

	*out = NULL;
	if (len > max)
		return RUF_E_TOO_LARGE;
	if ((m = protobuf_c_message_unpack(desc, alloc, len, buf)) == NULL)
		return RUF_E_FORMAT;
	if (!check_tree(m))
		goto out;
	/* Canonical form: re-encoding must give back exactly the input. */
	relen = protobuf_c_message_get_packed_size(m);
	if (relen != len)
		goto out;
	if (len > 0) {
		if ((re = malloc(len)) == NULL) {
			rc = RUF_E_NOMEM;
			goto out;
		}
		protobuf_c_message_pack(m, re);
		if (memcmp(re, buf, len) != 0)
			goto out;
	}
	*out = m;
	m = NULL;
	rc = 0;
out:
	if (re != NULL) {
		/* It is a copy of the input, which may hold secrets. */
		sodium_memzero(re, len);
		free(re);
	}
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, alloc);
	return rc;
}

int
ruf_pb_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len, size_t max,
              ProtobufCMessage **out)
{
	return decode(desc, buf, len, max, NULL, out);
}

int
ruf_pb_decode_secret(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                     size_t max, ProtobufCMessage **out)
{
	return decode(desc, buf, len, max, &secret_allocator, out);
}

void
ruf_pb_free_secret(ProtobufCMessage *msg)
{
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, &secret_allocator);
}

int
ruf_pb_encode(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(msg);

	/* One extra byte so an empty message still gets a non-NULL buffer. */
	if ((*out = malloc(n + 1)) == NULL)
		return RUF_E_NOMEM;
	*len = protobuf_c_message_pack(msg, *out);
	return 0;
}
