/*
 * url.c - the checks of a URL ferry sends to (see url.h). Parsing is libcurl's (curl_url), so
 * that a URL passes here exactly when the requests made with it will take it.
 */
#include "core/url.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

const char *ferry_url_problem(const char *url)
{
    CURLU *h = curl_url();
    CURLUcode rc = h ? curl_url_set(h, CURLUPART_URL, url, 0) : CURLUE_OUT_OF_MEMORY;

    curl_url_cleanup(h);
    return rc == CURLUE_OK ? NULL : curl_url_strerror(rc);
}

int ferry_url_parses(const char *url, char *errstr, size_t errstr_size)
{
    const char *why = ferry_url_problem(url);

    if (why)
        snprintf(errstr, errstr_size, "'%s' is not a URL: %s", url, why);
    return why ? -1 : 0;
}

int ferry_url_authority_has_host(const char *a)
{
    size_t len = strcspn(a, "/?#"), start = 0, host;

    for (size_t i = 0; i < len; i++) {
        if (a[i] == ' ' || a[i] == '\t' || a[i] == '\r' || a[i] == '\n')
            return 0;
        if (a[i] == '@')
            start = i + 1;
    }
    if (a[start] == '[') /* an IPv6 address */
        return start + 2 < len && a[start + 1] != ']';
    host = strcspn(a + start, ":/?#");
    return host > 0;
}
