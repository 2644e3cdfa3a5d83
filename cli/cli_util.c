#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sg_cli.h"
#include "sg_query.h"

static int vfail(int code, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static int vfail(int code, const char *fmt, va_list ap) {
        fputs("signgate: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        return code;
}

int sg_cli_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = vfail(SG_EXIT_USAGE, fmt, ap);
        va_end(ap);
        return r;
}

int sg_cli_fail(int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = vfail(code, fmt, ap);
        va_end(ap);
        return r;
}

int sg_cli_parse(const char *verb, int argc, char **argv, sg_cli_opt *opts, size_t n_opts, const char **pos,
                 size_t n_pos, size_t *ret_n_pos) {
        size_t np = 0;

        for (int i = 0; i < argc; i++) {
                const char *a = argv[i];
                if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
                        if (np >= n_pos) {
                                sg_cli_error("%s: unexpected argument '%s'", verb, a);
                                return -EINVAL;
                        }
                        pos[np++] = a;
                        continue;
                }
                const char *eq = strchr(a, '=');
                size_t nlen = eq ? (size_t) (eq - a - 2) : strlen(a + 2);
                sg_cli_opt *o = NULL;
                for (size_t k = 0; k < n_opts && !o; k++)
                        if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, a + 2, nlen) == 0)
                                o = &opts[k];
                if (!o) {
                        sg_cli_error("%s: unknown option '%.*s'", verb, (int) nlen + 2, a);
                        return -EINVAL;
                }
                if (o->value) {
                        sg_cli_error("%s: option --%s given twice", verb, o->name);
                        return -EINVAL;
                }
                if (o->flag) {
                        if (eq) {
                                sg_cli_error("%s: option --%s takes no value", verb, o->name);
                                return -EINVAL;
                        }
                        o->value = "1";
                } else if (eq)
                        o->value = eq + 1;
                else if (i + 1 < argc)
                        o->value = argv[++i];
                else {
                        sg_cli_error("%s: option --%s needs a value", verb, o->name);
                        return -EINVAL;
                }
        }
        for (size_t k = 0; k < n_opts; k++)
                if (opts[k].required && !opts[k].value) {
                        sg_cli_error("%s: missing required option --%s", verb, opts[k].name);
                        return -EINVAL;
                }
        if (ret_n_pos)
                *ret_n_pos = np;
        return 0;
}

const char *sg_cli_get(const sg_cli_opt *opts, size_t n, const char *name) {
        for (size_t k = 0; k < n; k++)
                if (strcmp(opts[k].name, name) == 0)
                        return opts[k].value;
        return NULL;
}

/* cJSON indents with tabs and puts one after each colon; the AWS CLI indents by four spaces.
 * Every raw tab in cJSON's output is layout (tabs inside strings are escaped), so this
 * rewrite cannot touch data. */
static void print_json(FILE *out, const char *s) {
        bool line_start = true;
        for (; *s; s++) {
                if (*s == '\t')
                        fputs(line_start ? "    " : " ", out);
                else {
                        fputc(*s, out);
                        line_start = *s == '\n';
                }
        }
        fputc('\n', out);
}

int sg_cli_print(const sg_cli *cli, cJSON *v) {
        cJSON *shown = v;
        int code = SG_EXIT_OK;

        if (!v)
                return sg_cli_error("out of memory");
        if (cli->query) {
                char why[256] = "";
                int r = sg_query_eval(v, cli->query, &shown, why, sizeof(why));
                if (r < 0) {
                        cJSON_Delete(v);
                        return sg_cli_error("--query '%s': %s", cli->query, r == -ENOMEM ? "out of memory" : why);
                }
        }
        const char *fmt = cli->output ? cli->output : "json";
        if (strcmp(fmt, "text") == 0) {
                if (sg_query_print_text(stdout, shown) < 0)
                        code = sg_cli_error("cannot write the output: %s", strerror(errno));
        } else {
                char *s = cJSON_Print(shown);
                if (!s)
                        code = sg_cli_error("out of memory");
                else {
                        print_json(stdout, s);
                        free(s);
                }
        }
        if (fflush(stdout) != 0)
                code = sg_cli_error("cannot write the output: %s", strerror(errno));
        if (shown != v)
                cJSON_Delete(shown);
        cJSON_Delete(v);
        return code;
}

cJSON *sg_cli_shorthand(const char *s) {
        if (s[0] == '{') {
                cJSON *j = cJSON_Parse(s);
                if (!cJSON_IsObject(j)) {
                        cJSON_Delete(j);
                        return NULL;
                }
                return j;
        }
        cJSON *j = cJSON_CreateObject();
        char *copy = strdup(s), *save = NULL;
        if (!j || !copy)
                goto fail;
        for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '=');
                if (!eq || eq == kv)
                        goto fail;
                *eq = '\0';
                if (cJSON_GetObjectItemCaseSensitive(j, kv) || !cJSON_AddStringToObject(j, kv, eq + 1))
                        goto fail;
        }
        free(copy);
        return j;
fail:
        free(copy);
        cJSON_Delete(j);
        return NULL;
}

int sg_cli_s3_path(const sg_cli *cli, const char *bucket, const char *key, char *path, size_t len) {
        if (!bucket || !*bucket || strchr(bucket, '/') || strcmp(bucket, ".") == 0 || strcmp(bucket, "..") == 0)
                return -EINVAL;
        if (!key || !*key || key[0] == '/')
                return -EINVAL;
        for (const char *c = key; *c;) {
                size_t n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return -EINVAL;
                c += n + (c[n] == '/');
        }
        char root[PATH_MAX];
        /* Report absolute paths: a job record outlives the directory it was started in. */
        if (!realpath(cli->bucket_root, root))
                snprintf(root, sizeof(root), "%s", cli->bucket_root);
        int w = snprintf(path, len, "%s/%s/%s", root, bucket, key);
        return w < 0 || (size_t) w >= len ? -ENAMETOOLONG : 0;
}

int sg_cli_open_home(const sg_cli *cli, const char *sub, bool create) {
        char path[PATH_MAX];
        int w = sub ? snprintf(path, sizeof(path), "%s/%s", cli->signer_home, sub)
                    : snprintf(path, sizeof(path), "%s", cli->signer_home);
        if (w < 0 || (size_t) w >= sizeof(path))
                return -ENAMETOOLONG;
        if (create) {
                /* The keystore holds private keys: every directory of it is the owner's alone. */
                mode_t old = umask(077);
                int r = sg_mkdir_p(path, 0700);
                umask(old);
                if (r < 0)
                        return r;
        }
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}
