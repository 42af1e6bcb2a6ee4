/*
 * ruf report | ruf surge: compose a report offline and seal it at once into
 * the outbox (outbox.h). The report comes from flags, a JSON file (--in), or
 * a template opened in $EDITOR (--edit); flags override keys of --in. The
 * command returns only once the entry is durable (envelope, content key
 * wrap, metadata: each written, fsynced, renamed, directory fsynced).
 *
 * The plaintext never stays on disk: --edit's working copy is a 0600 file
 * in $TMPDIR removed after reading, and --keep-draft keeps the JSON only
 * sealed (crypto_box_seal) to the device's own X25519 key.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli.h"
#include "outbox.h"
#include "seal_common.h"
#include "util.h"

static const char usage_report[] =
    "usage: ruf report [--in FILE.json | --edit] [fields] [options]\n"
    "  --in FILE              start from this report (JSON, docs/REPORTS.md)\n"
    "  --edit                 open the report (or a template) in $EDITOR first\n"
    "  --situation S --country C --region R --risk low|elevated|high|ongoing\n"
    "  --title T --summary TEXT --period-start YYYY-MM-DD (default today)\n"
    "  --early-warning --escalate\n"
    "  --casualty CATEGORY:KILLED:INJURED[:LOCATION]  (repeatable)\n"
    "  --attach FILE          seal this file with the report (repeatable, any size)\n"
    "  --keep-draft           keep the JSON, sealed to this device's own key\n"
    "  --json                 print the result as JSON\n"
    "  --home DIR  --passphrase-file F\n";
static const char usage_surge[] =
    "usage: ruf surge [--in FILE.json | --edit] [fields] [options]\n"
    "  --situation S --country C --region R --risk R --title T\n"
    "  --expertise human-rights|political|protection|other (repeatable)\n"
    "  --staff N --days N --justification TEXT --location TEXT\n"
    "  --attach FILE --keep-draft --json --home DIR --passphrase-file F\n";

struct compose {
	int kind;
	json_t *obj;
	json_t *attach; /* paths from --attach */
	const char *in, *homearg;
	struct cli_pass pp;
	bool edit, keep_draft, json_out;
};

static int
set_str(json_t *o, const char *k, const char *v)
{
	return json_object_set_new(o, k, json_string(v)) == 0 ? 0 : -1;
}

/* "killing:12:30:Um Sidr" -> a casualty row. */
static int
add_casualty(json_t *o, const char *spec)
{
	char buf[512], *save = NULL, *cat, *k, *inj, *loc;
	json_t *row, *arr = json_object_get(o, "casualties");
	long kv, iv;

	snprintf(buf, sizeof(buf), "%s", spec);
	cat = strtok_r(buf, ":", &save);
	k = strtok_r(NULL, ":", &save);
	inj = strtok_r(NULL, ":", &save);
	loc = strtok_r(NULL, "", &save);
	if (cat == NULL || k == NULL || inj == NULL)
		return -1;
	kv = strtol(k, NULL, 10);
	iv = strtol(inj, NULL, 10);
	row = json_object();
	json_object_set_new(row, "category", json_string(cat));
	json_object_set_new(row, "killed", json_integer(kv));
	json_object_set_new(row, "injured", json_integer(iv));
	if (loc != NULL)
		json_object_set_new(row, "location", json_string(loc));
	if (arr == NULL) {
		arr = json_array();
		json_object_set_new(o, "casualties", arr);
	}
	return json_array_append_new(arr, row);
}

static void
fill_defaults(struct compose *c, const struct cli_identity *id)
{
	json_t *o = c->obj;

	json_object_set_new(o, "kind", json_string(c->kind == RUF_KIND_SURGE ? "surge" : "sitrep"));
	json_object_set_new(o, "format", json_integer(1));
	if (json_object_get(o, "situation") == NULL && id->cert->n_situations > 0 &&
	    strcmp(id->cert->situations[0], "*") != 0)
		set_str(o, "situation", id->cert->situations[0]);
	if (json_object_get(o, "country") == NULL && id->cert->country && id->cert->country[0])
		set_str(o, "country", id->cert->country);
	if (c->kind == RUF_KIND_SITREP && json_object_get(o, "period_start") == NULL) {
		time_t t = (time_t)ruf_now();
		struct tm tm;
		char d[16];
		gmtime_r(&t, &tm);
		strftime(d, sizeof(d), "%Y-%m-%d", &tm);
		set_str(o, "period_start", d);
	}
}

/* The template for --edit: every key of the schema, the required ones pre-filled. */
static void
fill_template(json_t *o, int kind)
{
	static const char *const sitrep[] = {"region",
	                                     "risk",
	                                     "title",
	                                     "summary",
	                                     "human_rights_concerns",
	                                     "risks_of_serious_violations",
	                                     "protection_concerns",
	                                     "gender_impacts",
	                                     "recommended_preventive_measures",
	                                     "recommended_responsive_measures",
	                                     "support_requested",
	                                     NULL};
	static const char *const surge[] = {
	    "region",          "risk", "title", "location", "justification", "security_conditions",
	    "funding_details", NULL};
	const char *const *keys = kind == RUF_KIND_SURGE ? surge : sitrep;

	for (size_t i = 0; keys[i]; i++)
		if (json_object_get(o, keys[i]) == NULL)
			set_str(o, keys[i], "");
	if (kind == RUF_KIND_SURGE) {
		if (json_object_get(o, "expertise") == NULL)
			json_object_set_new(o, "expertise", json_pack("[s]", "human-rights"));
		if (json_object_get(o, "staff_count") == NULL)
			json_object_set_new(o, "staff_count", json_integer(1));
		if (json_object_get(o, "duration_days") == NULL)
			json_object_set_new(o, "duration_days", json_integer(30));
	} else {
		if (json_object_get(o, "violation_categories") == NULL)
			json_object_set_new(o, "violation_categories", json_array());
		if (json_object_get(o, "casualties") == NULL)
			json_object_set_new(o, "casualties", json_array());
	}
}

/* Empty strings left from the template mean "not given". */
static void
drop_empty(json_t *o)
{
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(o, tmp, k, v)
	{
		if (json_is_string(v) && json_string_length(v) == 0)
			json_object_del(o, k);
	}
}

static int
run_editor(struct compose *c)
{
	const char *ed = getenv("VISUAL") ? getenv("VISUAL") : getenv("EDITOR");
	const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[PATH_MAX], cmd[PATH_MAX + 512];
	json_error_t je;
	json_t *o;
	int fd, st;

	if (ed == NULL || ed[0] == '\0')
		return cli_fail(1, "--edit: set $EDITOR"), -1;
	fill_template(c->obj, c->kind);
	cli_path(path, sizeof(path), "%s/ruf-draft.XXXXXX", tmpdir);
	if ((fd = mkstemp(path)) == -1)
		return cli_fail(1, "%s: %s", path, strerror(errno)), -1;
	close(fd);
	if (json_dump_file(c->obj, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
		unlink(path);
		return cli_fail(1, "%s: cannot write", path), -1;
	}
	snprintf(cmd, sizeof(cmd), "%s '%s'", ed, path);
	st = system(cmd);
	o = json_load_file(path, 0, &je);
	unlink(path);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		json_decref(o);
		return cli_fail(1, "the editor failed: nothing composed"), -1;
	}
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		return cli_fail(1, "edited report: line %d, column %d: %s", je.line, je.column,
		                je.text),
		       -1;
	}
	drop_empty(o);
	json_decref(c->obj);
	c->obj = o;
	return 0;
}

/* Free space check before sealing: a full disk refuses with a clear error. */
static int
check_space(const char *dir, const struct ruf_report_input *rin, size_t jlen, size_t n_entries)
{
	struct statvfs sv;
	uint64_t need = jlen + (1u << 20), have;
	struct stat st;

	for (size_t i = 0; i < rin->n_attachments; i++)
		if (stat(rin->attachments[i].path, &st) == 0)
			need += (uint64_t)st.st_size + st.st_size / 16;
	if (statvfs(dir, &sv) != 0)
		return 0;
	have = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (have >= need)
		return 0;
	cli_fail(1,
	         "disk full: sealing needs about %" PRIu64 " KiB in %s, %" PRIu64
	         " KiB free; nothing composed (the outbox keeps its %zu entries)",
	         need >> 10, dir, have >> 10, n_entries);
	return RUF_E_NOSPC;
}

static int
keep_draft(const char *dir, const char *id, const char *json, size_t len, const uint8_t pk[32])
{
	char path[PATH_MAX];
	uint8_t *ct;
	int rc;

	if ((ct = malloc(len + crypto_box_SEALBYTES)) == NULL)
		return RUF_E_NOMEM;
	crypto_box_seal(ct, (const uint8_t *)json, len, pk);
	outbox_path(dir, id, "draft", path, sizeof(path));
	rc = ruf_file_write_atomic(path, ct, len + crypto_box_SEALBYTES, 0600, true);
	free(ct);
	return rc;
}

static int
compose(struct compose *c)
{
	struct cli_identity id = {0};
	struct ruf_report_input rin = {0};
	struct outbox_entry e;
	struct cli_sealed sealed;
	struct outbox_entry *all = NULL;
	size_t n_all = 0, jlen;
	uint8_t *ck = NULL;
	char dir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX], base[PATH_MAX],
	    queues[OUTBOX_QUEUES_MAX];
	char *json = NULL;
	const char *what = c->in ? c->in : "report";
	ruf_diag diag = {{0}};
	struct stat st;
	bool loaded = false, env_placed = false;
	int rc, fd = -1, exit_code = 1;

	memset(&e, 0, sizeof(e));
	if ((rc = cli_identity_load(cli_home(c->homearg), true, &c->pp, &id)) != 0) {
		exit_code = cli_exit_for(rc);
		goto out;
	}
	loaded = true;
	fill_defaults(c, &id);
	if (json_array_size(c->attach) > 0) {
		json_t *arr = json_object_get(c->obj, "attachments");
		if (arr == NULL) {
			arr = json_array();
			json_object_set_new(c->obj, "attachments", arr);
		}
		json_array_extend(arr, c->attach);
	}
	if (c->edit && (rc = run_editor(c)) != 0)
		goto out;
	json = json_dumps(c->obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (json == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	jlen = strlen(json);
	if (c->in) {
		cli_path(base, sizeof(base), "%s", c->in);
		cli_path(base, sizeof(base), "%s", dirname(base));
	} else if (getcwd(base, sizeof(base)) == NULL) {
		cli_path(base, sizeof(base), ".");
	}
	if ((rc = ruf_report_from_json(json, jlen, base, &diag, &rin)) != 0) {
		cli_fail(1, "%s: %s", what, diag.msg[0] ? diag.msg : ruf_strerror(rc));
		goto out;
	}
	for (size_t i = 0; i < rin.n_attachments; i++)
		if (stat(rin.attachments[i].path, &st) != 0 || !S_ISREG(st.st_mode)) {
			rc = RUF_E_NOTFOUND;
			cli_fail(1, "attachments[%zu].path: %s: %s", i, rin.attachments[i].path,
			         errno ? strerror(errno) : "not a regular file");
			goto out;
		}
	if ((rc = outbox_dir(id.home, dir, sizeof(dir))) != 0) {
		cli_fail(1, "%s/outbox: %s", id.home, ruf_strerror(rc));
		goto out;
	}
	if ((rc = outbox_list(dir, &all, &n_all)) != 0 ||
	    (rc = check_space(dir, &rin, jlen, n_all)) != 0)
		goto out;
	if ((ck = sodium_malloc(RUF_CONTENT_KEY_BYTES)) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	cli_path(tmp, sizeof(tmp), "%s/.tmp-%ld.env", dir, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
		rc = ruf_errno(errno);
		cli_fail(1, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if ((rc = cli_seal_report(&id, &rin, what, fd, &sealed, ck, NULL)) != 0)
		goto fail;
	if (fstat(fd, &st) == -1 || fsync(fd) == -1) {
		rc = errno == ENOSPC ? RUF_E_NOSPC : ruf_errno(errno);
		cli_fail(1, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	memcpy(e.msgid, sealed.msgid, RUF_MSGID_BYTES);
	ruf_hex(e.msgid, RUF_MSGID_BYTES, e.id);
	e.kind = sealed.hdr.kind;
	e.risk = sealed.hdr.risk;
	e.created = sealed.hdr.created;
	e.state = OUTBOX_PENDING;
	e.total_len = (uint64_t)st.st_size;
	e.dir_version = sealed.hdr.directory_version;
	e.updated = e.created;
	queues[0] = '\0';
	for (size_t i = 0; i < sealed.qs.n; i++) {
		strcat(queues, i ? "," : "");
		strcat(queues, sealed.qs.names[i]);
	}
	memcpy(e.queues, queues, sizeof(queues));
	outbox_path(dir, e.id, "env", path, sizeof(path));
	if (rename(tmp, path) == -1) {
		rc = ruf_errno(errno);
		cli_fail(1, "%s: %s", path, strerror(errno));
		goto fail;
	}
	env_placed = true;
	if ((rc = outbox_key_write(dir, &e, ck, id.cert->kx_pk)) != 0 ||
	    (c->keep_draft && (rc = keep_draft(dir, e.id, json, jlen, id.cert->kx_pk)) != 0) ||
	    (rc = outbox_save(dir, &e)) != 0) {
		cli_fail(1, "outbox: %s%s", ruf_strerror(rc),
		         rc == RUF_E_NOSPC || rc == RUF_E_IO ? " (disk full?): nothing composed"
		                                             : "");
		goto fail;
	}
	if (c->json_out) {
		printf("{\"message_id\": \"%s\", \"sequence\": %" PRIu64
		       ", \"state\": \"pending\", \"bytes\": %" PRIu64 ", \"queues\": [",
		       e.id, sealed.hdr.sequence, e.total_len);
		for (size_t i = 0; i < sealed.qs.n; i++)
			printf("%s\"%s\"", i ? ", " : "", sealed.qs.names[i]);
		printf("]}\n");
	} else {
		printf("%s %s (%s, sequence %" PRIu64 ", %" PRIu64 " bytes) sealed to %s: in the "
		       "outbox, pending\n",
		       ruf_kind_name(e.kind), e.id, ruf_risk_name(e.risk), sealed.hdr.sequence,
		       e.total_len, queues);
	}
	rc = 0;
	goto out;
fail:
	if (fd != -1)
		close(fd);
	fd = -1;
	unlink(tmp);
	if (env_placed) {
		static const char *const exts[] = {"meta", "draft", "env"};
		outbox_key_destroy(dir, e.id);
		for (size_t i = 0; i < 3; i++) {
			outbox_path(dir, e.id, exts[i], path, sizeof(path));
			unlink(path);
		}
	}
out:
	if (fd != -1)
		close(fd);
	if (ck != NULL)
		sodium_free(ck);
	outbox_list_free(all, n_all);
	if (json != NULL) {
		sodium_memzero(json, strlen(json));
		free(json);
	}
	ruf_report_input_free(&rin);
	if (loaded)
		cli_identity_free(&id);
	return rc == 0 ? 0 : exit_code;
}

static int
compose_main(int kind, int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"in", required_argument, NULL, 'i'},
	    {"edit", no_argument, NULL, 'e'},
	    {"situation", required_argument, NULL, 1},
	    {"country", required_argument, NULL, 2},
	    {"region", required_argument, NULL, 3},
	    {"risk", required_argument, NULL, 4},
	    {"title", required_argument, NULL, 5},
	    {"summary", required_argument, NULL, 6},
	    {"period-start", required_argument, NULL, 7},
	    {"early-warning", no_argument, NULL, 8},
	    {"escalate", no_argument, NULL, 9},
	    {"casualty", required_argument, NULL, 10},
	    {"expertise", required_argument, NULL, 11},
	    {"staff", required_argument, NULL, 12},
	    {"days", required_argument, NULL, 13},
	    {"justification", required_argument, NULL, 14},
	    {"location", required_argument, NULL, 15},
	    {"attach", required_argument, NULL, 'a'},
	    {"keep-draft", no_argument, NULL, 'k'},
	    {"json", no_argument, NULL, 'j'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *usage = kind == RUF_KIND_SURGE ? usage_surge : usage_report;
	struct compose c = {.kind = kind};
	json_t *flags = json_object(), *arr;
	json_error_t je;
	char abs[PATH_MAX];
	int ch, rc = 0;

	c.attach = json_array();
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'i':
			c.in = optarg;
			break;
		case 'e':
			c.edit = true;
			break;
		case 1:
			set_str(flags, "situation", optarg);
			break;
		case 2:
			set_str(flags, "country", optarg);
			break;
		case 3:
			set_str(flags, "region", optarg);
			break;
		case 4:
			set_str(flags, "risk", optarg);
			break;
		case 5:
			set_str(flags, "title", optarg);
			break;
		case 6:
			set_str(flags, "summary", optarg);
			break;
		case 7:
			set_str(flags, "period_start", optarg);
			break;
		case 8:
			json_object_set_new(flags, "early_warning", json_true());
			break;
		case 9:
			json_object_set_new(flags, "escalate", json_true());
			break;
		case 10:
			if (add_casualty(flags, optarg) != 0) {
				fprintf(
				    stderr,
				    "ruf: --casualty: want CATEGORY:KILLED:INJURED[:LOCATION]\n");
				rc = EXIT_USAGE;
			}
			break;
		case 11:
			if ((arr = json_object_get(flags, "expertise")) == NULL) {
				arr = json_array();
				json_object_set_new(flags, "expertise", arr);
			}
			json_array_append_new(arr, json_string(optarg));
			break;
		case 12:
			json_object_set_new(flags, "staff_count", json_integer(atoll(optarg)));
			break;
		case 13:
			json_object_set_new(flags, "duration_days", json_integer(atoll(optarg)));
			break;
		case 14:
			set_str(flags, "justification", optarg);
			break;
		case 15:
			set_str(flags, "location", optarg);
			break;
		case 'a':
			if (realpath(optarg, abs) == NULL) {
				fprintf(stderr, "ruf: --attach %s: %s\n", optarg, strerror(errno));
				rc = 1;
			} else {
				json_array_append_new(c.attach, json_pack("{s:s}", "path", abs));
			}
			break;
		case 'k':
			c.keep_draft = true;
			break;
		case 'j':
			c.json_out = true;
			break;
		case 'H':
			c.homearg = optarg;
			break;
		case 'p':
			c.pp.file = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			rc = -1;
			break;
		default:
			rc = EXIT_USAGE;
		}
	}
	if (rc == 0 && optind != argc)
		rc = EXIT_USAGE;
	if (rc == EXIT_USAGE)
		fputs(usage, stderr);
	if (rc != 0)
		goto out;
	if (c.in != NULL) {
		c.obj = json_load_file(c.in, JSON_REJECT_DUPLICATES, &je);
		if (c.obj == NULL || !json_is_object(c.obj)) {
			rc = cli_fail(1, "%s: line %d, column %d: %s", c.in, je.line, je.column,
			              c.obj ? "not a JSON object" : je.text);
			goto out;
		}
		if ((arr = json_object_get(c.obj, "kind")) != NULL &&
		    (!json_is_string(arr) ||
		     strcmp(json_string_value(arr), kind == RUF_KIND_SURGE ? "surge" : "sitrep"))) {
			rc = cli_fail(1, "%s: kind: this command composes a %s", c.in,
			              ruf_kind_name(kind));
			goto out;
		}
	} else {
		c.obj = json_object();
	}
	json_object_update(c.obj, flags);
	rc = compose(&c);
out:
	json_decref(flags);
	json_decref(c.obj);
	json_decref(c.attach);
	return rc < 0 ? 0 : rc;
}

int
ruf_report_main(int argc, char *argv[])
{
	return compose_main(RUF_KIND_SITREP, argc, argv);
}

int
ruf_surge_main(int argc, char *argv[])
{
	return compose_main(RUF_KIND_SURGE, argc, argv);
}
