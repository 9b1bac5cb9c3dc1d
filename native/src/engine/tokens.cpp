#include "tokens.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace cadenza::eng {

namespace {

const char* const PITCH_CLASS_NAMES[12] = {"C", "C#", "D", "E-", "E", "F",
                                           "F#", "G", "G#", "A", "B-", "B"};

int step_to_pc(char step) {
  switch (step) {
    case 'C': return 0;
    case 'D': return 2;
    case 'E': return 4;
    case 'F': return 5;
    case 'G': return 7;
    case 'A': return 9;
    case 'B': return 11;
    default: return -1;
  }
}

bool all_digits(const std::string& s, size_t from) {
  if (from >= s.size()) return false;
  for (size_t i = from; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

// ``-?\d+`` to the end of ``s`` from ``from``.
bool octave_at(const std::string& s, size_t from, long& octave) {
  const size_t digits = (from < s.size() && s[from] == '-') ? from + 1 : from;
  if (!all_digits(s, digits) || s.size() - digits > 6) return false;
  octave = std::strtol(s.c_str() + from, nullptr, 10);
  return true;
}

bool is_chord_text(const std::string& t) {
  // ^\d{1,2}(\.\d{1,2})*$
  size_t i = 0;
  while (true) {
    size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    if (i - start < 1 || i - start > 2) return false;
    if (i == t.size()) return true;
    if (t[i] != '.') return false;
    ++i;
  }
}

// name_to_midi for spellings other than the default names: the regex
// ^([A-G])(#{1,4}|-{1,4}|~|#~|-~|`|-`)?(-?\d+)$, tried in its order.
int spelled_midi(const std::string& name) {
  if (name.empty() || step_to_pc(name[0]) < 0) return -1;
  static const char* const ALTS[] = {"####", "###", "##", "#", "----", "---", "--", "-",
                                     "~", "#~", "-~", "`", "-`", ""};
  for (const char* alt : ALTS) {
    const std::string a(alt);
    if (name.compare(1, a.size(), a) != 0) continue;
    long octave = 0;
    if (!octave_at(name, 1 + a.size(), octave)) continue;
    int alter = 0;
    for (char c : a) alter += (c == '#') - (c == '-');
    const long midi = (octave + 1) * 12 + step_to_pc(name[0]) + alter;
    return (midi >= 0 && midi <= 127) ? static_cast<int>(midi) : -2;
  }
  return -1;
}

using Form = std::vector<int>;

std::vector<Form> rotations_from_zero(std::vector<int> pcs) {
  std::sort(pcs.begin(), pcs.end());
  std::vector<Form> out;
  for (size_t i = 0; i < pcs.size(); ++i) {
    Form r;
    for (size_t j = 0; j < pcs.size(); ++j) {
      const int pc = pcs[(i + j) % pcs.size()];
      r.push_back(((pc - pcs[i]) % 12 + 12) % 12);
    }
    out.push_back(r);
  }
  return out;
}

Form packing_key(const Form& f) {
  Form key{f.back()};
  for (size_t i = 1; i + 1 < f.size(); ++i) key.push_back(f[i]);
  return key;
}

const Form& min_by_packing(const std::vector<Form>& forms) {
  size_t best = 0;
  for (size_t i = 1; i < forms.size(); ++i) {
    if (packing_key(forms[i]) < packing_key(forms[best])) best = i;
  }
  return forms[best];
}

// tokens._normal_order_cached (Forte's packing rule), at construction only.
Form normal_order(uint16_t mask) {
  std::vector<int> pcs, inverted;
  for (int pc = 0; pc < 12; ++pc) {
    if (mask & (1u << pc)) {
      pcs.push_back(pc);
      inverted.push_back((12 - pc) % 12);
    }
  }
  const auto forms = rotations_from_zero(pcs);
  auto all = forms;
  const auto inverted_forms = rotations_from_zero(inverted);
  all.insert(all.end(), inverted_forms.begin(), inverted_forms.end());
  const Form prime = min_by_packing(all);
  Form shape;
  if (std::find(forms.begin(), forms.end(), prime) != forms.end()) {
    shape = prime;
  } else {
    std::vector<int> mirrored;
    for (int pc : prime) mirrored.push_back((12 - pc) % 12);
    shape = min_by_packing(rotations_from_zero(mirrored));
  }
  for (int t : pcs) {
    uint16_t m = 0;
    Form candidate;
    for (int pc : shape) {
      candidate.push_back((pc + t) % 12);
      m |= static_cast<uint16_t>(1u << ((pc + t) % 12));
    }
    if (m == mask && candidate.size() == pcs.size()) return candidate;
  }
  return pcs;  // unreachable: some transposition always fits
}

}  // namespace

std::string midi_to_name(int midi) {
  return std::string(PITCH_CLASS_NAMES[midi % 12]) + std::to_string(midi / 12 - 1);
}

std::string chord_token(uint16_t mask) {
  std::string out;
  for (int pc : normal_order(mask)) {
    if (!out.empty()) out += '.';
    out += std::to_string(pc);
  }
  return out;
}

bool parse_token(const std::string& token, TokenInfo& out, std::string& why) {
  out = TokenInfo{};
  if (is_chord_text(token)) {
    out.chord = true;
    size_t i = 0;
    while (i < token.size()) {
      size_t j = token.find('.', i);
      if (j == std::string::npos) j = token.size();
      const int pc = std::atoi(token.substr(i, j - i).c_str());
      if (pc > 11) {
        why = "pitch class above 11 in chord token '" + token + "'";
        return false;
      }
      if (out.classes >= MAX_CHORD_CLASSES) {
        why = "more than 12 pitch classes in chord token '" + token + "'";
        return false;
      }
      out.pcs[out.classes++] = pc;
      out.mask |= static_cast<uint16_t>(1u << pc);
      i = j + 1;
    }
    return true;
  }
  // tokens._DEFAULT_NAMES is a dict built upwards: where two numbers share a
  // name ("B-1" is B in octave -1 and B-flat in octave 1) the higher one wins.
  for (int m = 127; m >= 0; --m) {
    if (midi_to_name(m) == token) {
      out.midi = m;
      out.mask = static_cast<uint16_t>(1u << (m % 12));
      return true;
    }
  }
  const int midi = spelled_midi(token);
  if (midi == -1) {
    why = "not a note token: '" + token + "'";
    return false;
  }
  if (midi == -2) {
    why = "note token outside the MIDI range: '" + token + "'";
    return false;
  }
  out.midi = midi;
  out.mask = static_cast<uint16_t>(1u << (midi % 12));
  return true;
}

int voice_chord(const int* pcs, int count, int centre, int* notes) {
  int intervals[MAX_CHORD_CLASSES];
  intervals[0] = 0;
  for (int i = 1; i < count; ++i) {
    intervals[i] = intervals[i - 1] + (((pcs[i] - pcs[i - 1]) % 12) + 12) % 12;
  }
  const double middle = intervals[count - 1] / 2.0;
  int root = pcs[0];
  double best = 0.0;
  for (int octave = 0; octave < 11; ++octave) {
    const int r = pcs[0] + 12 * octave;
    const double distance = std::fabs((r + middle) - centre);
    if (octave == 0 || distance < best) {  // ties keep the lower root
      best = distance;
      root = r;
    }
  }
  for (int i = 0; i < count; ++i) notes[i] = root + intervals[i];
  while (notes[count - 1] > 127) {
    for (int i = 0; i < count; ++i) notes[i] -= 12;
  }
  while (notes[0] < 0) {
    for (int i = 0; i < count; ++i) notes[i] += 12;
  }
  return count;
}

}  // namespace cadenza::eng
