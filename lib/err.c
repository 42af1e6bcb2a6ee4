/* err.c - error strings and diagnostics. */
#include <stdarg.h>
#include <stdio.h>

#include "err.h"

static const char *const err_msgs[RUF__ERRIDX_MAX] = {[RUF__ERRIDX_OK] = "success",
#define RUF__ERR_MSG(name, msg) [RUF__ERRIDX_##name] = msg,
                                                      RUF_ERRORS(RUF__ERR_MSG)
#undef RUF__ERR_MSG
};

static const char *const err_names[RUF__ERRIDX_MAX] = {[RUF__ERRIDX_OK] = "OK",
#define RUF__ERR_NAME(name, msg) [RUF__ERRIDX_##name] = #name,
                                                       RUF_ERRORS(RUF__ERR_NAME)
#undef RUF__ERR_NAME
};

const char *
ruf_strerror(int err)
{
	if (err > 0 || -err >= RUF__ERRIDX_MAX)
		return "unknown error";
	return err_msgs[-err];
}

const char *
ruf_errname(int err)
{
	if (err > 0 || -err >= RUF__ERRIDX_MAX)
		return "UNKNOWN";
	return err_names[-err];
}

int
ruf_errno(int e)
{
	switch (e) {
	case 0:
		return RUF_OK;
	case ENOMEM:
		return RUF_E_NOMEM;
	case ENOENT:
		return RUF_E_NOTFOUND;
	case EEXIST:
		return RUF_E_EXISTS;
	case ENOSPC:
	case EDQUOT:
		return RUF_E_NOSPC;
	case EACCES:
	case EPERM:
		return RUF_E_PERM;
	case EINVAL:
		return RUF_E_INVAL;
	case EFBIG:
		return RUF_E_TOO_LARGE;
	default:
		return RUF_E_IO;
	}
}

void
ruf_diag_set(ruf_diag *d, const char *fmt, ...)
{
	va_list ap;

	if (d == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
}
