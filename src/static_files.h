/* static_files.h: the web/ folder served at / (demo page, client). */
#ifndef ANYPUSH_STATIC_FILES_H
#define ANYPUSH_STATIC_FILES_H

struct http_request;

/* Serve url from --web-root, or a JSON 404. MHD_YES/NO. */
int static_files_serve(struct http_request *req, const char *url);

#endif
