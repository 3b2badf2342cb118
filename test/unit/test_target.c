/*
 * test_target.c -- unit tests for the relay's target and its migration
 * hint (relay/target.c; docs/vmotion.md "Routing on the hint").
 *
 * Three hosts: the appliance runs on A; the relay under test is B (or
 * C, or A, per test); a vMotion heads for C.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "../../relay/relay.h"
#include "xaddr.h"

#define APP	"tcp://127.0.0.1:1024"
#define MESH_A	"tcp://127.0.0.1:7001"
#define MESH_B	"tcp://127.0.0.1:7002"
#define MESH_C	"tcp://127.0.0.1:7003"

/* A target for relay SELF at epoch EPOCH, the appliance on HOST. */
static struct target *
mk(const char *self, const char *host, int epoch)
{
	struct target	*t = target_new(self);
	json_t		*o;
	char		 err[256];

	o = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:s}}", "epoch", epoch,
	    "appliance_host", host, "appliance", APP, "peers",
	    "A", MESH_A, "B", MESH_B, "C", MESH_C);
	assert_int_equal(target_set(t, o, 1, err, sizeof(err)), 0);
	json_decref(o);
	return (t);
}

/* Where target_route() sends a leg now ("" for nowhere). */
static const char *
route(struct target *t)
{
	const struct xaddr	*a;
	const char		*why, *host;

	a = target_route(t, &why, &host);
	return (a != NULL ? xaddr_str(a) : "");
}

/* Where target_route_hint() sends a resuming leg ("" for nowhere). */
static const char *
hint_route(struct target *t)
{
	const struct xaddr	*a;
	const char		*why, *host;

	a = target_route_hint(t, &why, &host);
	return (a != NULL ? xaddr_str(a) : "");
}

/* A push that moves the appliance to HOST. */
static void
push(struct target *t, const char *host, int epoch)
{
	json_t	*o;
	char	 err[256];

	o = json_pack("{s:i, s:s}", "epoch", epoch, "appliance_host", host);
	assert_int_equal(target_set(t, o, 1, err, sizeof(err)), 0);
	json_decref(o);
}

/* No hint: one route, and no second one. */
static void
test_no_hint(void **state)
{
	struct target	*t = mk("B", "A", 1);

	assert_string_equal(route(t), MESH_A);
	assert_string_equal(hint_route(t), "");
	assert_null(target_local_appliance(t));
	assert_null(target_hint_mesh(t));
	assert_int_equal(target_hint_moving(t), 0);
	assert_int_equal(target_hint_seen(t, MESH_C), 0);
	target_free(t);
}

/* A hint adds a second route; seeing it there moves the first. */
static void
test_hint_seen(void **state)
{
	struct target	*t = mk("B", "A", 1);
	char		 err[256];

	assert_int_equal(target_hint(t, "C", "", err, sizeof(err)), 0);
	assert_string_equal(route(t), MESH_A);	/* not before it is seen */
	assert_string_equal(hint_route(t), MESH_C);
	assert_string_equal(xaddr_str(target_hint_mesh(t)), MESH_C);
	assert_int_equal(target_hint_moving(t), 0);	/* neither end */
	/* A resume elsewhere proves nothing. */
	assert_int_equal(target_hint_seen(t, MESH_A), 0);
	assert_int_equal(target_hint_seen(t, MESH_C), 1);
	assert_int_equal(target_hint_seen(t, MESH_C), 0);	/* once */
	assert_string_equal(route(t), MESH_C);
	assert_string_equal(hint_route(t), "");	/* the same now */
	/* "Moving" again to where it was seen is no news. */
	assert_int_equal(target_hint(t, "C", "", err, sizeof(err)), 0);
	assert_string_equal(route(t), MESH_C);
	/* The push that confirms it ends the hint. */
	push(t, "C", 2);
	assert_string_equal(route(t), MESH_C);
	assert_null(target_hint_mesh(t));
	target_free(t);
}

/* The destination's relay delivers hinted legs locally. */
static void
test_hint_destination(void **state)
{
	struct target	*t = mk("C", "A", 1);
	char		 err[256];

	assert_null(target_local_appliance(t));
	assert_int_equal(target_hint(t, "C", "", err, sizeof(err)), 0);
	assert_non_null(target_local_appliance(t));
	assert_string_equal(xaddr_str(target_local_appliance(t)), APP);
	assert_string_equal(route(t), MESH_A);
	assert_string_equal(hint_route(t), APP);	/* local delivery */
	assert_int_equal(target_hint_moving(t), 1);
	/* The appliance took a leg here: seen. */
	assert_int_equal(target_hint_seen(t, APP), 1);
	assert_string_equal(route(t), APP);
	assert_int_equal(target_hint_moving(t), 0);
	target_free(t);
}

/* The source's relay: local until seen, failures there are fast. */
static void
test_hint_source(void **state)
{
	struct target	*t = mk("A", "A", 1);
	char		 err[256];

	assert_int_equal(target_hint(t, "C", "", err, sizeof(err)), 0);
	assert_non_null(target_local_appliance(t));
	assert_int_equal(target_hint_moving(t), 1);
	assert_string_equal(hint_route(t), MESH_C);
	assert_int_equal(target_hint_seen(t, MESH_C), 1);
	assert_null(target_local_appliance(t));	/* it has left */
	assert_string_equal(route(t), MESH_C);
	target_free(t);
}

/*
 * A done move (VmMigratedEvent) sees a live hint for its host, and only
 * that: a late one for another host, or with no hint, moves nothing.  A
 * failed one ends the hint.
 */
static void
test_hint_moved_failed(void **state)
{
	struct target	*t = mk("B", "A", 1);
	char		 err[256];

	assert_int_equal(target_hint_done(t, "C"), 0);	/* no hint */
	assert_string_equal(route(t), MESH_A);
	assert_int_equal(target_hint(t, "C", "", err, sizeof(err)), 0);
	assert_int_equal(target_hint_done(t, "D"), 0);	/* not its host */
	assert_string_equal(route(t), MESH_A);
	assert_int_equal(target_hint_done(t, "C"), 1);
	assert_string_equal(route(t), MESH_C);
	/* A failure after the move was seen done is late: routes stay. */
	assert_int_equal(target_hint_failed(t), 0);
	assert_string_equal(route(t), MESH_C);
	target_hint_clear(t);
	assert_string_equal(route(t), MESH_A);
	assert_string_equal(hint_route(t), "");
	/* One before it is seen ends the hint. */
	assert_int_equal(target_hint(t, "C", "", err, sizeof(err)), 0);
	assert_string_equal(hint_route(t), MESH_C);
	assert_int_equal(target_hint_failed(t), 1);
	assert_string_equal(hint_route(t), "");
	assert_string_equal(route(t), MESH_A);
	/* After a push moved the appliance on, a late event is nothing. */
	assert_int_equal(target_hint(t, "C", "", err, sizeof(err)), 0);
	push(t, "C", 2);
	push(t, "A", 3);
	assert_int_equal(target_hint_done(t, "C"), 0);
	assert_string_equal(route(t), MESH_A);
	target_free(t);
}

/* A push that keeps the host keeps the hint; one elsewhere ends it. */
static void
test_hint_push(void **state)
{
	struct target	*t = mk("B", "A", 1);
	json_t		*o;
	char		 err[256];

	assert_int_equal(target_hint(t, "C", "", err, sizeof(err)), 0);
	o = json_pack("{s:i, s:s}", "epoch", 2, "appliance_host", "A");
	assert_int_equal(target_set(t, o, 1, err, sizeof(err)), 0);
	json_decref(o);
	assert_string_equal(hint_route(t), MESH_C);
	push(t, "B", 3);	/* not where the hint said: a new story */
	assert_string_equal(hint_route(t), "");
	assert_non_null(target_local_appliance(t));
	target_free(t);
}

/*
 * "Moving to A" while the target already has the appliance on A is late
 * news (the locator pushes an update's target before its events);
 * "moving" anywhere else is not, nor is anything before a target.
 */
static void
test_hint_late(void **state)
{
	struct target	*t = mk("B", "A", 1);

	assert_int_equal(target_hint_late(t, "A"), 1);
	assert_int_equal(target_hint_late(t, "C"), 0);
	push(t, "C", 2);
	assert_int_equal(target_hint_late(t, "A"), 0);
	assert_int_equal(target_hint_late(t, "C"), 1);
	target_free(t);
}

/* The hint's own relay address serves a host with no peer entry. */
static void
test_hint_relay_addr(void **state)
{
	struct target	*t = mk("B", "A", 1);
	json_t		*o;
	char		 err[256];

	assert_int_equal(target_hint(t, "D", "tcp://127.0.0.1:7004", err,
	    sizeof(err)), 0);
	assert_string_equal(hint_route(t), "tcp://127.0.0.1:7004");
	/* A bad address is an error; the hint holds without it. */
	assert_int_equal(target_hint(t, "E", "tcp://no.such.name:1", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "numeric"));
	assert_string_equal(hint_route(t), "");	/* E: no address known */
	o = target_json(t);
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(o, "hint"), "host")), "E");
	json_decref(o);
	target_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_hint),
		cmocka_unit_test(test_hint_seen),
		cmocka_unit_test(test_hint_destination),
		cmocka_unit_test(test_hint_source),
		cmocka_unit_test(test_hint_moved_failed),
		cmocka_unit_test(test_hint_push),
		cmocka_unit_test(test_hint_late),
		cmocka_unit_test(test_hint_relay_addr),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
