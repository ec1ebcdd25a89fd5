// The browser console served at / by the HTTP gateway: one static page
// (server/console/index.html, compiled in) that calls the HTTP/JSON API.
#ifndef GANSERVE_SERVER_CONSOLE_H_
#define GANSERVE_SERVER_CONSOLE_H_

#include <string>

namespace ganserve::server {

const std::string& ConsoleHtml();

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_CONSOLE_H_
