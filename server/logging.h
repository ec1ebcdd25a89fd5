// spdlog set-up for the server: text or one-JSON-object-per-line logs on stderr.
#ifndef GANSERVE_SERVER_LOGGING_H_
#define GANSERVE_SERVER_LOGGING_H_

#include <string>

namespace ganserve::server {

// level: trace|debug|info|warn|error; format: text|json.
void ConfigureLogging(const std::string& level, const std::string& format);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_LOGGING_H_
