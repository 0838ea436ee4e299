#include "sluice/http/grpc.h"

#include <gtest/gtest.h>

namespace sluice::http {
namespace {

using stats::LocalReason;
using std::chrono::milliseconds;

TEST(GrpcContentType, ApplicationGrpcAloneOrWithASuffixOrParameters) {
  EXPECT_TRUE(is_grpc_content_type("application/grpc"));
  EXPECT_TRUE(is_grpc_content_type("application/grpc+proto"));
  EXPECT_TRUE(is_grpc_content_type("application/grpc+json"));
  EXPECT_TRUE(is_grpc_content_type("application/grpc;charset=utf-8"));
  EXPECT_TRUE(is_grpc_content_type("Application/GRPC"));
  EXPECT_FALSE(is_grpc_content_type("application/grpc-web"));  // gRPC-Web is another protocol
  EXPECT_FALSE(is_grpc_content_type("application/grpcx"));
  EXPECT_FALSE(is_grpc_content_type("application/json"));
  EXPECT_FALSE(is_grpc_content_type("application/grp"));
  EXPECT_FALSE(is_grpc_content_type(""));
  EXPECT_FALSE(is_grpc_content_type(" application/grpc"));
}

TEST(GrpcTimeout, EveryUnit) {
  EXPECT_EQ(parse_grpc_timeout("2H"), milliseconds(7'200'000));
  EXPECT_EQ(parse_grpc_timeout("3M"), milliseconds(180'000));
  EXPECT_EQ(parse_grpc_timeout("10S"), milliseconds(10'000));
  EXPECT_EQ(parse_grpc_timeout("200m"), milliseconds(200));
  EXPECT_EQ(parse_grpc_timeout("1500u"), milliseconds(2));        // 1.5 ms rounds up
  EXPECT_EQ(parse_grpc_timeout("3000000n"), milliseconds(3));     // exactly 3 ms
  EXPECT_EQ(parse_grpc_timeout("00000200m"), milliseconds(200));  // 8 digits, leading zeros
}

// Below 1 ms, and 0 itself, give 1 ms: a zero duration would mean "no timeout".
TEST(GrpcTimeout, SubMillisecondAndZeroRoundUpToOneMillisecond) {
  EXPECT_EQ(parse_grpc_timeout("1n"), milliseconds(1));
  EXPECT_EQ(parse_grpc_timeout("999u"), milliseconds(1));
  EXPECT_EQ(parse_grpc_timeout("0m"), milliseconds(1));
  EXPECT_EQ(parse_grpc_timeout("0S"), milliseconds(1));
}

TEST(GrpcTimeout, HugeValuesAreClamped) {
  EXPECT_EQ(parse_grpc_timeout("99999999H"), kGrpcTimeoutMax);
  EXPECT_EQ(parse_grpc_timeout("99999999M"), kGrpcTimeoutMax);
  EXPECT_EQ(parse_grpc_timeout("99999999S"), kGrpcTimeoutMax);
  EXPECT_EQ(parse_grpc_timeout("99999999m"), milliseconds(99'999'999));
}

TEST(GrpcTimeout, InvalidValuesAreIgnored) {
  for (std::string_view bad : {"", "m", "200", "200x", "200 m", " 200m", "200m ", "-1m", "+1m",
                               "1.5S", "123456789m", "2h", "2s", "m200", "0x10m", "２m"}) {
    EXPECT_FALSE(parse_grpc_timeout(bad).has_value()) << bad;
  }
}

TEST(GrpcStatus, TheSeventeenCodesAndUnknownForAnythingElse) {
  ASSERT_EQ(kGrpcCodeNames.size(), 17u);
  EXPECT_STREQ(kGrpcCodeNames[0], "OK");
  EXPECT_STREQ(kGrpcCodeNames[4], "DEADLINE_EXCEEDED");
  EXPECT_STREQ(kGrpcCodeNames[12], "UNIMPLEMENTED");
  EXPECT_STREQ(kGrpcCodeNames[14], "UNAVAILABLE");
  EXPECT_STREQ(kGrpcCodeNames[16], "UNAUTHENTICATED");
  for (int i = 0; i < 17; ++i) {
    EXPECT_EQ(parse_grpc_status(std::to_string(i)), static_cast<GrpcStatus>(i)) << i;
  }
  EXPECT_EQ(parse_grpc_status("07"), GrpcStatus::kPermissionDenied);
  for (std::string_view bad : {"", "17", "99", "100", "-1", "+1", " 0", "0 ", "OK", "1a"}) {
    EXPECT_EQ(parse_grpc_status(bad), GrpcStatus::kUnknown) << bad;
  }
}

// The table gRPC clients (and Envoy) use for a response without grpc-status.
TEST(GrpcStatus, FromHttpStatus) {
  EXPECT_EQ(http_to_grpc_status(400), GrpcStatus::kInternal);
  EXPECT_EQ(http_to_grpc_status(401), GrpcStatus::kUnauthenticated);
  EXPECT_EQ(http_to_grpc_status(403), GrpcStatus::kPermissionDenied);
  EXPECT_EQ(http_to_grpc_status(404), GrpcStatus::kUnimplemented);
  for (int s : {429, 502, 503, 504})
    EXPECT_EQ(http_to_grpc_status(s), GrpcStatus::kUnavailable) << s;
  for (int s : {200, 408, 413, 431, 499, 500, 501}) {
    EXPECT_EQ(http_to_grpc_status(s), GrpcStatus::kUnknown) << s;
  }
}

TEST(GrpcStatus, OfSluicesOwnReplies) {
  EXPECT_EQ(grpc_status_for(LocalReason::kNoRoute, 404), GrpcStatus::kUnimplemented);
  EXPECT_EQ(grpc_status_for(LocalReason::kNoRoute, 500), GrpcStatus::kUnimplemented);
  for (auto r : {LocalReason::kNoHealthyUpstream, LocalReason::kConnectFailure,
                 LocalReason::kUpstreamReset, LocalReason::kOverflow}) {
    EXPECT_EQ(grpc_status_for(r, r == LocalReason::kUpstreamReset ? 502 : 503),
              GrpcStatus::kUnavailable)
        << stats::to_string(r);
  }
  // The route timeout is 504, which the HTTP table would call UNAVAILABLE: the reason decides.
  EXPECT_EQ(grpc_status_for(LocalReason::kTimeout, 504), GrpcStatus::kDeadlineExceeded);
  EXPECT_EQ(grpc_status_for(LocalReason::kBadRequest, 400), GrpcStatus::kInternal);
  EXPECT_EQ(grpc_status_for(LocalReason::kBodyTooLarge, 413), GrpcStatus::kUnknown);
  EXPECT_EQ(grpc_status_for(LocalReason::kRequestTimeout, 408), GrpcStatus::kUnknown);
}

TEST(GrpcMessage, PercentEncodedAsTheSpecSays) {
  std::string out;
  append_grpc_message(out, "no route matches the request in virtual host 'app'");
  EXPECT_EQ(out, "no route matches the request in virtual host 'app'");  // printable ASCII stays
  out.clear();
  append_grpc_message(out, "100% done\r\n\t~");
  EXPECT_EQ(out, "100%25 done%0D%0A%09~");
  out.clear();
  append_grpc_message(out, "caf\xc3\xa9 \x7f");  // UTF-8 bytes and DEL
  EXPECT_EQ(out, "caf%C3%A9 %7F");
}

}  // namespace
}  // namespace sluice::http
