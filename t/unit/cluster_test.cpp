// Cluster mode's pure parts (issue 13): etcd URLs and prefixes as
// oauth2_cluster and --etcd take them, the key mapping between the store
// and etcd, base64 as etcd's gateway speaks it, and the Txn a change
// becomes.  The rest runs against a real etcd in t/cluster.t and
// scripts/cluster-*.

#include <gtest/gtest.h>

#include "cluster.hpp"
#include "etcd.hpp"
#include "json.hpp"

namespace oauth2 {
namespace {

TEST(EtcdConfig, EndpointsAreSchemeHostPort) {
  auto e = parse_etcd_endpoints("http://10.0.0.1:2379,https://etcd.example:2379");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0], "http://10.0.0.1:2379");
  EXPECT_EQ(e[1], "https://etcd.example:2379");
  for (const char* bad : {"", "10.0.0.1:2379", "ftp://a:1", "http://", "http://a:1/v3",
                          "http://a:1,", "http://a b:1"}) {
    EXPECT_THROW(parse_etcd_endpoints(bad), std::invalid_argument) << bad;
  }
}

TEST(EtcdConfig, PrefixStartsAndEndsWithSlash) {
  EXPECT_NO_THROW(check_etcd_prefix("/oauth2/"));
  EXPECT_NO_THROW(check_etcd_prefix("/site-a/oauth2/"));
  for (const char* bad : {"", "/", "oauth2/", "/oauth2", "/o auth/"}) {
    EXPECT_THROW(check_etcd_prefix(bad), std::invalid_argument) << bad;
  }
}

// oauth2_cluster cacert= cert= key= and --etcd-cacert, --etcd-cert,
// --etcd-key: what nginx -t and the CLI refuse, in the caller's words
TEST(EtcdConfig, TlsFilesComeInPairsWithHttpsAndReadable) {
  const EtcdTlsNames names{"etcd=", "cacert=", "cert=", "key="};
  const char* readable = "/proc/self/status";  // any file that reads
  auto config = [](const char* url, const char* cacert, const char* cert, const char* key) {
    EtcdConfig c;
    c.endpoints = parse_etcd_endpoints(url);
    c.cacert = cacert;
    c.cert = cert;
    c.key = key;
    return c;
  };
  auto why = [&](const EtcdConfig& c) {
    try {
      check_etcd_tls(c, names);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(why(config("http://a:1", "", "", "")), "");
  EXPECT_EQ(why(config("https://a:1", readable, readable, readable)), "");
  EXPECT_EQ(why(config("http://a:1,https://b:1", readable, "", "")), "");
  EXPECT_EQ(why(config("https://a:1", "", readable, "")), "cert= needs key=");
  EXPECT_EQ(why(config("https://a:1", "", "", readable)), "key= needs cert=");
  EXPECT_EQ(why(config("http://a:1", readable, "", "")),
            "cacert= needs an https:// etcd URL (etcd= has none)");
  EXPECT_EQ(why(config("https://a:1", "/nonexistent/ca.pem", "", "")),
            "cacert= \"/nonexistent/ca.pem\" cannot be read: No such file or directory");
  EXPECT_EQ(why(config("https://a:1", "", "/", readable)),
            "cert= \"/\" cannot be read: Is a directory");
  EXPECT_EQ(why(config("https://a:1", "", readable, "/dev/null")),
            "key= \"/dev/null\" cannot be read: the file is empty");
}

TEST(EtcdBase64, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 70; n++) {
    EXPECT_EQ(unbase64_std(base64_std(bytes)), bytes) << n;
    bytes.push_back(static_cast<char>(n * 37));
  }
  EXPECT_EQ(base64_std("/t/a"), "L3QvYQ==");
  EXPECT_FALSE(unbase64_std("abc"));
  EXPECT_FALSE(unbase64_std("a*c="));
}

TEST(EtcdKeys, RecordsMapBothWays) {
  Etcd etcd(EtcdConfig{{"http://127.0.0.1:1"}, "/oauth2/", "", "", ""});
  const std::string raw("default\x1f\x00\xff", 10);
  std::string k = etcd.key(Db::kTokens, raw);
  EXPECT_EQ(k, "/oauth2/tokens/" + raw);
  auto back = etcd.record(k);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->first, Db::kTokens);
  EXPECT_EQ(back->second, raw);
  EXPECT_FALSE(etcd.record("/oauth2/heartbeat/host:1"));
  EXPECT_FALSE(etcd.record("/other/tokens/x"));
  EXPECT_FALSE(etcd.record("/oauth2/tokens"));
  EXPECT_EQ(Etcd::range_end("/oauth2/"), "/oauth20");
  EXPECT_EQ(Etcd::range_end(std::string("a\xff", 2)), "b");
}

TEST(ClusterTxn, ReadsWritesAndGuardedRangesBecomeCompares) {
  Cluster cluster(EtcdConfig{{"http://127.0.0.1:1"}, "/p/", "", "", ""}, 5000);
  Change c;
  c.reads.push_back({Db::kClients,
                     "default\x1f"
                     "app",
                     std::string("rec")});
  c.reads.push_back({Db::kTokens,
                     "default\x1f"
                     "new",
                     std::nullopt});
  c.reads.push_back({Db::kMeta, "schema_version", std::string("2")});  // local: left out
  c.scans.push_back({Db::kFamilyTokens,
                     "default\x1f"
                     "fam",
                     0, Digest{}});
  c.writes.push_back({Db::kTokens,
                      "default\x1f"
                      "new",
                      std::string("tok")});
  c.writes.push_back({Db::kTokens,
                      "default\x1f"
                      "old",
                      std::nullopt});
  c.writes.push_back({Db::kMeta, "mirror_revision", std::string("9")});  // local: left out
  Json req = cluster.txn_request(c, 41);
  const json_t* cmp = json_object_get(req.get(), "compare");
  ASSERT_EQ(json_array_size(cmp), 3u);
  EXPECT_STREQ(json_string_value(json_object_get(json_array_get(cmp, 0), "target")), "VALUE");
  EXPECT_EQ(unbase64_std(json_string_value(json_object_get(json_array_get(cmp, 0), "value"))),
            "rec");
  EXPECT_STREQ(json_string_value(json_object_get(json_array_get(cmp, 1), "target")), "VERSION");
  EXPECT_STREQ(json_string_value(json_object_get(json_array_get(cmp, 1), "version")), "0");
  const json_t* range = json_array_get(cmp, 2);
  EXPECT_STREQ(json_string_value(json_object_get(range, "target")), "MOD");
  EXPECT_STREQ(json_string_value(json_object_get(range, "result")), "LESS");
  EXPECT_STREQ(json_string_value(json_object_get(range, "mod_revision")), "42");
  EXPECT_EQ(unbase64_std(json_string_value(json_object_get(range, "key"))),
            "/p/family_tokens/default\x1f"
            "fam");
  const json_t* ops = json_object_get(req.get(), "success");
  ASSERT_EQ(json_array_size(ops), 2u);
  EXPECT_TRUE(json_object_get(json_array_get(ops, 0), "request_put"));
  EXPECT_TRUE(json_object_get(json_array_get(ops, 1), "request_delete_range"));
}

// Three token requests of one application read its record alike: that
// compare goes to the outer Txn once, and each keeps its own (the new
// token's key absent); one Txn alone, or none alike, hoists nothing.
TEST(ClusterTxn, CompareEveryTxnOfABatchMakesGoesToTheOuterTxnOnce) {
  Cluster cluster(EtcdConfig{{"http://127.0.0.1:1"}, "/p/", "", "", ""}, 5000);
  auto token_change = [](const std::string& client, const std::string& token) {
    Change c;
    c.reads.push_back({Db::kClients, "default\x1f" + client, std::string("rec-" + client)});
    c.reads.push_back({Db::kTokens, "default\x1f" + token, std::nullopt});
    c.writes.push_back({Db::kTokens, "default\x1f" + token, std::string("tok")});
    return c;
  };
  auto compares = [](const Json& t) { return json_object_get(t.get(), "compare"); };
  std::vector<Json> txns;
  for (const char* t : {"t1", "t2", "t3"}) {
    txns.push_back(cluster.txn_request(token_change("app", t), 41));
  }
  Json common = Cluster::hoist_common_compares(txns);
  ASSERT_EQ(json_array_size(common.get()), 1u);
  EXPECT_EQ(unbase64_std(json_string_value(json_object_get(json_array_get(common.get(), 0), "key"))),
            "/p/clients/default\x1f"
            "app");
  EXPECT_EQ(unbase64_std(json_string_value(json_object_get(json_array_get(common.get(), 0), "value"))),
            "rec-app");
  for (const Json& t : txns) {
    ASSERT_EQ(json_array_size(compares(t)), 1u);
    EXPECT_STREQ(json_string_value(json_object_get(json_array_get(compares(t), 0), "target")),
                 "VERSION");
  }

  std::vector<Json> one;
  one.push_back(cluster.txn_request(token_change("app", "t4"), 41));
  EXPECT_EQ(json_array_size(Cluster::hoist_common_compares(one).get()), 0u);
  EXPECT_EQ(json_array_size(compares(one[0])), 2u);

  std::vector<Json> two_apps;
  two_apps.push_back(cluster.txn_request(token_change("app", "t5"), 41));
  two_apps.push_back(cluster.txn_request(token_change("other", "t6"), 41));
  EXPECT_EQ(json_array_size(Cluster::hoist_common_compares(two_apps).get()), 0u);
  EXPECT_EQ(json_array_size(compares(two_apps[0])), 2u);
  EXPECT_EQ(json_array_size(compares(two_apps[1])), 2u);
}

TEST(ClusterMeta, TheMachinesOwnRecordsAreLocal) {
  for (const char* m :
       {"schema_version", "map_size", "mirror_revision", "mirror_fresh_at", "mirror_of"}) {
    EXPECT_TRUE(local_meta(m)) << m;
  }
  for (const char* m : {"expiry_lease", "expiry_cursor", "realm:shop1"}) {
    EXPECT_FALSE(local_meta(m)) << m;
  }
}

}  // namespace
}  // namespace oauth2
