/*
 * proxy.c -- the HAProxy PROXY protocol v2 header vappliance may put
 * in front of each backend connection, so the backend learns which
 * guest it serves (doc/proxy-protocol.txt in HAProxy).  No address
 * block (AF_UNSPEC: vSocket peers have no IP); the guest's identity
 * rides in TLVs.
 */
#include <string.h>

#include "appliance.h"

static const uint8_t proxy_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54,
	0x0a
};

/* Append one TLV (type, u16 length, value) at P. */
static uint8_t *
proxy_tlv(uint8_t *p, uint8_t type, const void *v, size_t len)
{
	p[0] = type;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	memcpy(p + 3, v, len);
	return (p + 3 + len);
}

/* The fixed 16 bytes; the TLVs go from BUF + 16. */
static uint8_t *
proxy_start(uint8_t *buf)
{
	memcpy(buf, proxy_sig, sizeof(proxy_sig));
	buf[12] = 0x21;		/* version 2, PROXY */
	buf[13] = 0x00;		/* AF_UNSPEC, UNSPEC */
	return (buf + 16);
}

/* Close the header that ends at P: its TLV length; its size. */
static size_t
proxy_end(uint8_t *buf, const uint8_t *p)
{
	size_t	len = (size_t)(p - buf) - 16;

	buf[14] = (uint8_t)(len >> 8);
	buf[15] = (uint8_t)len;
	return ((size_t)(p - buf));
}

/* A string TLV, if S is set, cut at MAX bytes. */
static uint8_t *
proxy_tlv_str(uint8_t *p, uint8_t type, const char *s, size_t max)
{
	if (s == NULL)
		return (p);
	return (proxy_tlv(p, type, s, strnlen(s, max)));
}

/* Build the header into BUF (at least PROXY_HDR_MAX); returns its size. */
size_t
proxy_v2_header(uint8_t *buf, size_t size, const char *host, uint32_t cid,
    uint32_t port, const char *id)
{
	uint8_t	*p, be[4];
	size_t	 hlen = strnlen(host, 255), ilen = strnlen(id, 16);

	if (size < PROXY_HDR_MAX)
		return (0);
	p = proxy_start(buf);
	p = proxy_tlv(p, PROXY_TLV_HOST, host, hlen);
	be[0] = cid >> 24;
	be[1] = cid >> 16;
	be[2] = cid >> 8;
	be[3] = cid;
	p = proxy_tlv(p, PROXY_TLV_CID, be, 4);
	be[0] = port >> 24;
	be[1] = port >> 16;
	be[2] = port >> 8;
	be[3] = port;
	p = proxy_tlv(p, PROXY_TLV_PORT, be, 4);
	p = proxy_tlv(p, PROXY_TLV_UNIQUE_ID, id, ilen);
	return (proxy_end(buf, p));
}

/*
 * A serial VM's header (docs/operations.md): host, service, then what
 * the VM said of itself, then the VM stream's id.
 */
size_t
proxy_v2_serial_header(uint8_t *buf, size_t size, const struct proxy_id *id)
{
	uint8_t	*p;

	if (size < PROXY_HDR_MAX)
		return (0);
	p = proxy_start(buf);
	p = proxy_tlv_str(p, PROXY_TLV_HOST, id->host, 255);
	p = proxy_tlv_str(p, PROXY_TLV_SERVICE, id->service, 16);
	p = proxy_tlv_str(p, PROXY_TLV_VM_UUID, id->uuid, 128);
	p = proxy_tlv_str(p, PROXY_TLV_VM_NAME, id->name, 160);
	p = proxy_tlv_str(p, PROXY_TLV_BIOS_UUID, id->bios, 128);
	p = proxy_tlv_str(p, PROXY_TLV_UNIQUE_ID, id->id, 16);
	return (proxy_end(buf, p));
}
